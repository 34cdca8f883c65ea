#pragma once
// Fused QAT passes over a quantized layer's latent weights (docs/qat-design.md). One read of the
// weights gives both what the forward pass needs (the quantized weight) and what transition-rate
// scheduling needs (codes, prev_codes and the counts of kernels/transition_stats.h).
#include "core/tensor.h"
#include "kernels/quant_math.h"
#include "kernels/transition_stats.h"

namespace tranq::kernels {

// y = value(w) exactly as fake_quantize_forward(w, scale, r, y) writes it, and codes/prev_codes
// updated and counted exactly as weight_transition_pass(w, scale, r, codes, prev_codes,
// near_fraction) does; returns those counts. y: contiguous, w's shape, dtype and device; it may
// alias w. The other arguments and their checks are weight_transition_pass's; on an error
// nothing is written. CPU: the two existing passes (transition first, so y may alias w); CUDA:
// one kernel.
TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction = 0.1);

namespace cpu {
TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction);
}  // namespace cpu

// CUDA version (kernels/cuda/qat_fused.cu): y, codes, prev_codes and counts equal the CPU's
// bit for bit; synchronises with the host to return the counts.
namespace cuda {
TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction);
}  // namespace cuda

}  // namespace tranq::kernels
