#include "quant/fake_quantize.h"

#include <vector>

#include "kernels/quantize.h"

namespace tranq::quant {

Tensor fake_quantize(const Tensor& x, const Tensor& scale, const kernels::QuantRange& r,
                     bool lsq_grad_scale, const Tensor& codes) {
  const int64_t per_scale = kernels::check_quantize_args("fake_quantize", x, scale, r);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::fake_quantize_forward(x, scale, r, y, codes);
  const double factor = lsq_grad_scale ? kernels::lsq_grad_scale_factor(per_scale, r) : 1.0;
  const bool need_dx = x.requires_grad(), need_ds = scale.requires_grad();
  Tensor sx = x.detach(), ss = scale.detach();
  return record(y, "fake_quantize", {x, scale},
                [sx, ss, r, factor, need_dx, need_ds](const Tensor& grad) {
                  const Tensor g = grad.contiguous();
                  Tensor dx, ds;
                  if (need_dx) dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
                  if (need_ds) ds = Tensor::empty(ss.shape(), ss.dtype(), ss.device());
                  kernels::fake_quantize_backward(sx, ss, r, g, dx, ds, factor);
                  return std::vector<Tensor>{dx, ds};
                });
}

}  // namespace tranq::quant
