#include "kernels/batch_norm.h"

#include "kernels/batch_norm_act.h"
#include "layers/functional.h"

namespace tranq::ops {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  check_defined(x, "batch_norm", "x");
  TRANQ_CHECK(x.dim() >= 2, "batch_norm: expected x [N,C,H,W] or [N,C], got {}", tensor_str(x));
  TRANQ_CHECK(momentum >= 0.0 && momentum <= 1.0, "batch_norm: momentum must lie in [0, 1], got {}",
              momentum);
  // Without running statistics eval mode falls back to batch statistics, like PyTorch's
  // BatchNorm with track_running_stats=False.
  const bool use_batch = training || !running_mean.defined();
  const int64_t c = x.size(1);
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty_like(xc);
  Tensor mean = Tensor::empty({c}, x.dtype(), x.device());
  Tensor invstd = Tensor::empty({c}, x.dtype(), x.device());
  // The kernel updates the running statistics only when it uses batch statistics, i.e. here
  // in training; in eval it reads them.
  kernels::batch_norm_forward(xc, weight, bias, running_mean, running_var, use_batch, momentum, eps,
                              y, mean, invstd);

  const bool need_dx = x.requires_grad(), need_dw = weight.defined() && weight.requires_grad(),
             need_db = bias.defined() && bias.requires_grad();
  const Tensor sx = xc.detach();
  const Tensor sw = weight.defined() ? weight.detach() : Tensor();
  return record(y, "batch_norm", {x, weight, bias}, {sx, sw},
                [sx, sw, mean, invstd, use_batch, need_dx, need_dw, need_db](const Tensor& g) {
                  const Tensor gc = g.contiguous();
                  const int64_t ch = sx.size(1);
                  Tensor dx = need_dx ? Tensor::empty_like(sx) : Tensor();
                  Tensor dw = need_dw ? Tensor::empty({ch}, sx.dtype(), sx.device()) : Tensor();
                  Tensor db = need_db ? Tensor::empty({ch}, sx.dtype(), sx.device()) : Tensor();
                  kernels::batch_norm_backward(sx, gc, sw, mean, invstd, use_batch, dx, dw, db);
                  return std::vector<Tensor>{dx, dw, db};
                });
}

Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      double momentum, double eps, const Tensor& residual, bool relu) {
  check_defined(x, "batch_norm_act", "x");
  TRANQ_CHECK(x.dim() >= 2, "batch_norm_act: expected x [N,C,H,W] or [N,C], got {}", tensor_str(x));
  TRANQ_CHECK(momentum >= 0.0 && momentum <= 1.0,
              "batch_norm_act: momentum must lie in [0, 1], got {}", momentum);
  const bool use_batch = training || !running_mean.defined();
  const int64_t c = x.size(1);
  const Tensor xc = x.contiguous();
  const Tensor rc = residual.defined() ? residual.contiguous() : Tensor();
  Tensor y = Tensor::empty_like(xc);
  Tensor mean = Tensor::empty({c}, x.dtype(), x.device());
  Tensor invstd = Tensor::empty({c}, x.dtype(), x.device());
  kernels::batch_norm_act_forward(xc, weight, bias, running_mean, running_var, use_batch, momentum,
                                  eps, rc, relu, y, mean, invstd);

  const bool need_dx = x.requires_grad(), need_dw = weight.defined() && weight.requires_grad(),
             need_db = bias.defined() && bias.requires_grad(),
             need_dr = residual.defined() && residual.requires_grad();
  const Tensor sx = xc.detach();
  const Tensor sy = relu ? y.detach() : Tensor();  // the ReLU mask; a detached alias, no cycle
  const Tensor sw = weight.defined() ? weight.detach() : Tensor();
  return record(y, "batch_norm_act", {x, weight, bias, residual}, {sx, sy, sw},
                [sx, sy, sw, mean, invstd, use_batch, relu, need_dx, need_dw, need_db,
                 need_dr](const Tensor& g) {
                  const Tensor gc = g.contiguous();
                  const int64_t ch = sx.size(1);
                  Tensor dx = need_dx ? Tensor::empty_like(sx) : Tensor();
                  Tensor dw = need_dw ? Tensor::empty({ch}, sx.dtype(), sx.device()) : Tensor();
                  Tensor db = need_db ? Tensor::empty({ch}, sx.dtype(), sx.device()) : Tensor();
                  Tensor dr = need_dr ? Tensor::empty_like(sx) : Tensor();
                  kernels::batch_norm_act_backward(sx, sy, gc, sw, mean, invstd, use_batch, relu,
                                                   dx, dr, dw, db);
                  return std::vector<Tensor>{dx, dw, db, dr};
                });
}

}  // namespace tranq::ops
