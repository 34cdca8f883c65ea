// CUDA batch norm: the fused kernels of kernels/cuda/batch_norm_act.cu without residual and
// ReLU, which perform exactly the plain op's per-element operations.
#include "kernels/batch_norm.h"
#include "kernels/cuda/batch_norm_common.cuh"

namespace tranq::kernels::cuda {

void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd) {
  bn::forward("batch_norm_forward", x, weight, bias, running_mean, running_var, use_batch_stats,
              momentum, eps, Tensor(), false, y, save_mean, save_invstd);
}

void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool use_batch_stats,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  bn::backward("batch_norm_backward", x, Tensor(), dy, weight, save_mean, save_invstd,
               use_batch_stats, false, dx, Tensor(), dweight, dbias);
}

}  // namespace tranq::kernels::cuda
