#include "kernels/batch_norm.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {
void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd) {
  check_defined(x, "batch_norm_forward", "x");
  check_same_device("batch_norm_forward", x,
                    {&weight, &bias, &running_mean, &running_var, &y, &save_mean, &save_invstd});
  TRANQ_DISPATCH_CUDA(batch_norm_forward, x, x, weight, bias, running_mean, running_var,
                      use_batch_stats, momentum, eps, y, save_mean, save_invstd);
}
void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool use_batch_stats,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  check_defined(x, "batch_norm_backward", "x");
  check_same_device("batch_norm_backward", x,
                    {&dy, &weight, &save_mean, &save_invstd, &dx, &dweight, &dbias});
  TRANQ_DISPATCH_CUDA(batch_norm_backward, x, x, dy, weight, save_mean, save_invstd,
                      use_batch_stats, dx, dweight, dbias);
}
}  // namespace tranq::kernels
