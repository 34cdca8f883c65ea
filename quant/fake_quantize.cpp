#include "quant/fake_quantize.h"

#include <vector>

#include "kernels/quantize.h"

namespace tranq::quant {

namespace {

// Records y as the fake quantizer's output with its backward (STE to x, LSQ to the scale).
Tensor record_fake_quantize(const Tensor& y, const Tensor& x, const Tensor& scale,
                            const kernels::QuantRange& r, double factor) {
  const bool need_dx = x.requires_grad(), need_ds = scale.requires_grad();
  Tensor sx = x.detach(), ss = scale.detach();
  return record(y, "fake_quantize", {x, scale}, {sx, ss},
                [sx, ss, r, factor, need_dx, need_ds](const Tensor& grad) {
                  const Tensor g = grad.contiguous();
                  Tensor dx, ds;
                  if (need_dx) dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
                  if (need_ds) ds = Tensor::empty(ss.shape(), ss.dtype(), ss.device());
                  kernels::fake_quantize_backward(sx, ss, r, g, dx, ds, factor);
                  return std::vector<Tensor>{dx, ds};
                });
}

double grad_factor(bool lsq_grad_scale, int64_t per_scale, const kernels::QuantRange& r) {
  return lsq_grad_scale ? kernels::lsq_grad_scale_factor(per_scale, r) : 1.0;
}

}  // namespace

Tensor fake_quantize(const Tensor& x, const Tensor& scale, const kernels::QuantRange& r,
                     bool lsq_grad_scale, const Tensor& codes) {
  const int64_t per_scale = kernels::check_quantize_args("fake_quantize", x, scale, r);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::fake_quantize_forward(x, scale, r, y, codes);
  return record_fake_quantize(y, x, scale, r, grad_factor(lsq_grad_scale, per_scale, r));
}

Tensor fake_quantize_precomputed(const Tensor& x, const Tensor& scale,
                                 const kernels::QuantRange& r, bool lsq_grad_scale,
                                 const Tensor& y) {
  const char* op = "fake_quantize_precomputed";
  const int64_t per_scale = kernels::check_quantize_args(op, x, scale, r);
  check_defined(y, op, "y");
  check_same_shape(x, y, op);
  TRANQ_CHECK(y.dtype() == x.dtype() && y.device() == x.device() && y.is_contiguous(),
              "{}: y must be a contiguous {} on {}, got {}", op, dtype_name(x.dtype()),
              x.device().str(), tensor_str(y));
  return record_fake_quantize(y, x, scale, r, grad_factor(lsq_grad_scale, per_scale, r));
}

}  // namespace tranq::quant
