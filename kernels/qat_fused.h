#pragma once
// Fused QAT passes over a quantized layer's latent weights (docs/qat.md). One read of the
// weights gives both what the forward pass needs (the quantized weight) and what transition-rate
// scheduling needs (codes, prev_codes and the counts of kernels/transition_stats.h).
#include "core/tensor.h"
#include "kernels/quant_math.h"
#include "kernels/transition_stats.h"

namespace tranq::kernels {

// y = value(w) exactly as fake_quantize_forward(w, scale, r, y) writes it, and codes/prev_codes
// updated and counted exactly as weight_transition_pass(w, scale, r, codes, prev_codes,
// near_fraction) does; returns those counts. y: contiguous, w's shape, dtype and device; it may
// be w itself, but not overlap it in part. The other arguments and their checks are
// weight_transition_pass's; on an error nothing is written. CPU: the two existing passes
// (transition first, so y may alias w); CUDA: one kernel.
TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction = 0.1);

// The same pass writing its counts into row `row` of a counts table (i64 [L, 4] on w's device),
// as kernels::weight_transition_pass_into does: what a training step uses, so that the weights
// are read once per step for both the next forward's quantized weight and the TRS counts. CPU:
// ValueError on a bad scale, nothing written. CUDA: nothing synchronises; a zero or non-finite
// scale leaves codes and prev_codes untouched, fills y with NaN unless y aliases w (so a
// forward that uses it cannot look healthy) and reports the row as
// weight_transition_pass_into does.
void quantize_weight_and_count_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                    const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                                    double near_fraction, const Tensor& counts, int64_t row);

// y: defined, contiguous, w's shape, dtype and device. Shared by the backends.
void check_fused_values(const char* op, const Tensor& w, const Tensor& y);

namespace cpu {
TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction);
void quantize_weight_and_count_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                    const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                                    double near_fraction, const Tensor& counts, int64_t row);
}  // namespace cpu

// CUDA version (kernels/cuda/qat_fused.cu): y, codes, prev_codes and counts equal the CPU's
// bit for bit; synchronises with the host to return the counts.
namespace cuda {
TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction);
void quantize_weight_and_count_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                    const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                                    double near_fraction, const Tensor& counts, int64_t row);
}  // namespace cuda

}  // namespace tranq::kernels
