#pragma once
// Batch norm fused with what follows it in residual networks: y = act(bn(x) + residual), with
// act = ReLU or identity and the residual optional. One pass writes y where the unfused chain
// (batch_norm, add, relu) makes three, and the backward needs only y (for the ReLU mask) and x.
// kernels/batch_norm.h is the specification: the result equals that composition up to float
// rounding (the same operations in the same order per element).
#include "core/tensor.h"

namespace tranq::kernels {

// x, y and residual (may be undefined) are contiguous and of one shape; the other arguments
// are as in batch_norm_forward (running statistics updated in place with batch statistics).
void batch_norm_act_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var,
                            bool use_batch_stats, double momentum, double eps,
                            const Tensor& residual, bool relu, const Tensor& y,
                            const Tensor& save_mean, const Tensor& save_invstd);

// Gradients for the incoming dy, given the forward's x and output y. The gradient reaching the
// normalisation is dz = relu ? dy * (y > 0) : dy. OVERWRITES each defined output: dx (through
// the batch statistics when used), dresidual = dz, dweight, dbias; undefined ones are skipped.
void batch_norm_act_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& weight, const Tensor& save_mean,
                             const Tensor& save_invstd, bool use_batch_stats, bool relu,
                             const Tensor& dx, const Tensor& dresidual, const Tensor& dweight,
                             const Tensor& dbias);

namespace cpu {
void batch_norm_act_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var,
                            bool use_batch_stats, double momentum, double eps,
                            const Tensor& residual, bool relu, const Tensor& y,
                            const Tensor& save_mean, const Tensor& save_invstd);
void batch_norm_act_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& weight, const Tensor& save_mean,
                             const Tensor& save_invstd, bool use_batch_stats, bool relu,
                             const Tensor& dx, const Tensor& dresidual, const Tensor& dweight,
                             const Tensor& dbias);
}  // namespace cpu

// CUDA versions (kernels/cuda/batch_norm_act.cu): one block per channel for the statistics and
// the gradient sums (double, fixed order), elementwise kernels for y and dx. Deterministic;
// the CPU's results to rounding.
namespace cuda {
void batch_norm_act_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var,
                            bool use_batch_stats, double momentum, double eps,
                            const Tensor& residual, bool relu, const Tensor& y,
                            const Tensor& save_mean, const Tensor& save_invstd);
void batch_norm_act_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& weight, const Tensor& save_mean,
                             const Tensor& save_invstd, bool use_batch_stats, bool relu,
                             const Tensor& dx, const Tensor& dresidual, const Tensor& dweight,
                             const Tensor& dbias);
}  // namespace cuda

}  // namespace tranq::kernels
