#include "kernels/batch_norm_act.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {
void batch_norm_act_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var,
                            bool use_batch_stats, double momentum, double eps,
                            const Tensor& residual, bool relu, const Tensor& y,
                            const Tensor& save_mean, const Tensor& save_invstd) {
  check_defined(x, "batch_norm_act_forward", "x");
  check_same_device(
      "batch_norm_act_forward", x,
      {&weight, &bias, &running_mean, &running_var, &residual, &y, &save_mean, &save_invstd});
  TRANQ_DISPATCH_CUDA(batch_norm_act_forward, x, x, weight, bias, running_mean, running_var,
                      use_batch_stats, momentum, eps, residual, relu, y, save_mean, save_invstd);
}
void batch_norm_act_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& weight, const Tensor& save_mean,
                             const Tensor& save_invstd, bool use_batch_stats, bool relu,
                             const Tensor& dx, const Tensor& dresidual, const Tensor& dweight,
                             const Tensor& dbias) {
  check_defined(x, "batch_norm_act_backward", "x");
  check_same_device(
      "batch_norm_act_backward", x,
      {&y, &dy, &weight, &save_mean, &save_invstd, &dx, &dresidual, &dweight, &dbias});
  TRANQ_DISPATCH_CUDA(batch_norm_act_backward, x, x, y, dy, weight, save_mean, save_invstd,
                      use_batch_stats, relu, dx, dresidual, dweight, dbias);
}
}  // namespace tranq::kernels
