#pragma once
// The CUDA batch norm, shared by kernels/cuda/batch_norm.cu and kernels/cuda/batch_norm_act.cu:
// the plain op is the fused one without residual and ReLU (the same per-element operations, as
// kernels/batch_norm_act.h specifies), so both run these two functions, defined in
// batch_norm_act.cu. `op` names the public function in error messages.
//
// Only kernels/cuda/*.cu include this.
#include "core/tensor.h"

namespace tranq::kernels::cuda::bn {

void forward(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
             const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
             double momentum, double eps, const Tensor& residual, bool relu, const Tensor& y,
             const Tensor& save_mean, const Tensor& save_invstd);

void backward(const char* op, const Tensor& x, const Tensor& y, const Tensor& dy,
              const Tensor& weight, const Tensor& save_mean, const Tensor& save_invstd,
              bool use_batch_stats, bool relu, const Tensor& dx, const Tensor& dresidual,
              const Tensor& dweight, const Tensor& dbias);

}  // namespace tranq::kernels::cuda::bn
