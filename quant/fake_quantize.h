#pragma once
// The differentiable fake quantizer (modified LSQ, docs/trs-method.md): forward value(x) =
// code(x)/g, no post-scaling; backward by the straight-through estimator to x and, LSQ-style
// through x/|s|, to the scale. Math and reductions: kernels/quantize.h.
#include "core/autograd.h"
#include "core/tensor.h"
#include "kernels/quant_math.h"

namespace tranq::quant {

// x: contiguous f32/f64. scale: x's dtype, [1] or [x.size(0)] (per channel along dim 0).
// Gradients: x gets dy/|s| inside the clip range (STE); scale, when it requires grad, gets
// sign(s) * sum_inside(-dy*x)/|s|^2, times 1/sqrt(N*Qp) when lsq_grad_scale (N elements per
// scale, Qp = r.hi). codes: optional contiguous i8 (u8 for unsigned codes) buffer with
// x.numel() elements, filled with the integer codes of this forward.
Tensor fake_quantize(const Tensor& x, const Tensor& scale, const kernels::QuantRange& r,
                     bool lsq_grad_scale = false, const Tensor& codes = Tensor());

// fake_quantize(x, scale, r, lsq_grad_scale) whose forward value was computed already: y must
// hold exactly the values fake_quantize would (e.g. from kernels::quantize_weight_and_count
// over the same x and scale), contiguous, x's shape, dtype and device. Returns y, recorded with
// fake_quantize's backward, so values and gradients equal fake_quantize's without reading x.
Tensor fake_quantize_precomputed(const Tensor& x, const Tensor& scale,
                                 const kernels::QuantRange& r, bool lsq_grad_scale,
                                 const Tensor& y);

}  // namespace tranq::quant
