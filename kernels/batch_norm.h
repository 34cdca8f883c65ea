#pragma once
// Batch normalisation over the channel dimension of x [N,C,...] (contiguous; [N,C] works too).
// Statistics are per channel over N and every trailing position.
#include "core/tensor.h"

namespace tranq::kernels {

// x viewed as [n, c, inner]: channel c is n runs of `inner` contiguous values.
struct BnLayout {
  int64_t n = 0, c = 0, inner = 1;
  int64_t count() const { return n * inner; }  // values per channel
};

// The argument checks every backend runs (batch_norm and batch_norm_act): shapes, dtypes,
// contiguity, devices of the [C] vectors, eps and the batch-statistics rules. They return x's
// layout.
BnLayout check_batch_norm_forward_args(const char* op, const Tensor& x, const Tensor& weight,
                                       const Tensor& bias, const Tensor& running_mean,
                                       const Tensor& running_var, bool use_batch_stats, double eps,
                                       const Tensor& y, const Tensor& save_mean,
                                       const Tensor& save_invstd);
BnLayout check_batch_norm_backward_args(const char* op, const Tensor& x, const Tensor& dy,
                                        const Tensor& weight, const Tensor& save_mean,
                                        const Tensor& save_invstd, const Tensor& dx,
                                        const Tensor& dweight, const Tensor& dbias);
// t undefined, or contiguous with x's shape, dtype and device (residual, y, dresidual).
void check_like_input(const Tensor& t, const Tensor& x, const char* op, const char* arg);

// y = (x - mean) * invstd * weight + bias, with weight/bias [C] or undefined (affine off).
// use_batch_stats: mean and biased variance of this batch; running_mean/running_var, when
//   defined, are updated in place: running = (1-momentum)*running + momentum*batch, the
//   variance entering unbiased (n/(n-1)). Needs more than one value per channel.
// otherwise: normalises with running_mean/running_var (which must be defined).
// save_mean and save_invstd [C] (dtype of x) receive the mean and 1/sqrt(var+eps) that were
// used, for the backward pass. Every [C] tensor has x's dtype and device.
void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd);

// Gradients of batch_norm_forward for the incoming dy (same shape as x). dx, dweight and
// dbias may each be undefined to skip them. use_batch_stats must match the forward: with
// batch statistics dx includes the paths through the mean and the variance.
void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool use_batch_stats,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias);

namespace cpu {
void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd);
void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool use_batch_stats,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias);
}  // namespace cpu

// CUDA versions (kernels/cuda/batch_norm.cu, the fused kernels of batch_norm_act without residual
// and ReLU): per-channel sums in double with a fixed order (one block per channel), running
// statistics as above; the same bits on every run, the CPU's results to rounding.
namespace cuda {
void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd);
void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool use_batch_stats,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias);
}  // namespace cuda

}  // namespace tranq::kernels
