#pragma once
// Weight transition statistics for transition-rate scheduling (docs/qat.md): one fused
// pass over a quantized layer's latent weights after each optimizer step compares every
// weight's integer code with its code at the previous count, spots oscillations (a change
// back to the code held before the most recent transition) and counts the weights that sit
// close to a transition point. Codes use the quantizer of kernels/quant_math.h exactly, so
// they equal the codes fake_quantize_forward emits for the same weights and scale.
//
// Arguments: w contiguous f32/f64; scale as in kernels/quantize.h ([1] or [w.size(0)], w's
// dtype, |s| used); codes and prev_codes contiguous i8 buffers with w.numel() elements (any
// shape), updated in place; r must fit int8 (every weight range does); near_fraction in
// [0, 0.5], in units of one quantizer step.
#include <cstdint>

#include "core/tensor.h"
#include "kernels/quant_math.h"

namespace tranq::kernels {

struct TransitionCounts {
  int64_t numel = 0, changed = 0, oscillated = 0, near = 0;
};

// First count: codes = code(w), prev_codes = codes. Reports changed = oscillated = 0 and the
// near count.
TransitionCounts weight_transition_init(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction = 0.1);

// Per weight i: c = code(w_i); if c != codes_i { ++changed; if c == prev_codes_i ++oscillated;
// prev_codes_i = codes_i; codes_i = c; }  near += distance(t_i, transition point) < near_fraction.
TransitionCounts weight_transition_pass(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction = 0.1);

// The same passes writing their counts into row `row` of `counts` (i64 [L, 4], contiguous, on
// w's device) as {numel, changed, oscillated, near}, so that a training step can count every
// quantized layer into one table without bringing anything to the host (kernels/trs_update.h
// reads the table on the device). On the CPU these call the passes above and store the counts
// (a bad scale is a ValueError there). On CUDA nothing synchronises and the scale is checked on
// the device only: a zero, non-finite or too small scale (quant_scale_usable) leaves codes and
// prev_codes untouched and writes the row {numel, -(number of bad scale values), 0, 0}. A negative
// `changed` is therefore the device's error report; trs_update skips such a row and records the
// step (see there), and whoever reads the table later (QatController::sync_for_logging) raises the
// ValueError.
void weight_transition_init_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row);
void weight_transition_pass_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row);

// Columns of a counts table row.
constexpr int64_t kCountNumel = 0, kCountChanged = 1, kCountOscillated = 2, kCountNear = 3,
                  kCountColumns = 4;

// Shared argument checks for the backends.
void check_transition_args(const char* op, const Tensor& w, const Tensor& scale,
                           const QuantRange& r, const Tensor& codes, const Tensor& prev_codes,
                           double near_fraction);
// counts: defined, i64 [L, 4] contiguous on w's device, 0 <= row < L.
void check_counts_table(const char* op, const Tensor& w, const Tensor& counts, int64_t row);

namespace cpu {
TransitionCounts weight_transition_init(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction);
TransitionCounts weight_transition_pass(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction);
void weight_transition_init_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row);
void weight_transition_pass_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row);
}  // namespace cpu

// CUDA versions (kernels/cuda/transition_stats.cu): one fused kernel; codes, prev_codes and
// every count equal the CPU's exactly (integer block sums). They synchronise with the host to
// return the counts, and also check the scale on the GPU first: a zero, non-finite or too small
// scale (quant_scale_usable) is a ValueError with codes and prev_codes untouched, as on the CPU.
namespace cuda {
TransitionCounts weight_transition_init(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction);
TransitionCounts weight_transition_pass(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction);
// No synchronisation, no host read of the scale (see weight_transition_pass_into above).
void weight_transition_init_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row);
void weight_transition_pass_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row);
}  // namespace cuda

}  // namespace tranq::kernels
