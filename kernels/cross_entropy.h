#pragma once
// Softmax cross-entropy over logits [N,C] with integer labels [N] (i32 or i64), averaged over
// the batch. Label smoothing eps follows PyTorch: the target is (1-eps)*onehot + eps/C, so
//   loss_i = (1-eps) * (-log p[i,y_i]) + eps * mean_c(-log p[i,c]).
#include "core/tensor.h"

namespace tranq::kernels {

// Throws ValueError naming the first label outside [0, num_classes). Host-side check on a CPU
// copy of labels (cheap: N values).
void check_labels(const Tensor& labels, int64_t num_classes, const char* op);

// loss (shape [], logits' dtype) = the mean loss; probs [N,C] (logits' dtype) = softmax of
// the logits, kept for the backward. Labels must be valid (see check_labels).
void cross_entropy_forward(const Tensor& logits, const Tensor& labels, double label_smoothing,
                           const Tensor& loss, const Tensor& probs);

// dlogits [N,C] = dloss * (probs - target) / N, with dloss the incoming scalar gradient.
void cross_entropy_backward(const Tensor& probs, const Tensor& labels, double label_smoothing,
                            const Tensor& dloss, const Tensor& dlogits);

namespace cpu {
void cross_entropy_forward(const Tensor& logits, const Tensor& labels, double label_smoothing,
                           const Tensor& loss, const Tensor& probs);
void cross_entropy_backward(const Tensor& probs, const Tensor& labels, double label_smoothing,
                            const Tensor& dloss, const Tensor& dlogits);
}  // namespace cpu

// CUDA versions (kernels/cuda/cross_entropy.cu): one block per row, row losses summed in a
// fixed order; deterministic, the CPU's results to rounding. They do not check the labels'
// values (that would need a host copy, which waits for the stream; ops::cross_entropy checks
// them unless its caller did): they stay memory-safe on a label outside [0, C), which makes that
// row's loss and so the mean loss NaN (its probabilities are still written) and leaves the
// backward's label term out of that row.
namespace cuda {
void cross_entropy_forward(const Tensor& logits, const Tensor& labels, double label_smoothing,
                           const Tensor& loss, const Tensor& probs);
void cross_entropy_backward(const Tensor& probs, const Tensor& labels, double label_smoothing,
                            const Tensor& dloss, const Tensor& dlogits);
}  // namespace cuda

}  // namespace tranq::kernels
