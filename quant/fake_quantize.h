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

}  // namespace tranq::quant
