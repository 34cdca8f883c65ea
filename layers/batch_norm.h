#pragma once
// BatchNorm2d: torch.nn.BatchNorm2d (affine, tracking running statistics). Parameters "weight"
// (ones) and "bias" (zeros); buffers "running_mean" (zeros), "running_var" (ones) and
// "num_batches_tracked" (i64 scalar, shape []), in PyTorch's registration order.
#include <cstdint>

#include "layers/module.h"

namespace tranq {

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       DType dtype = DType::f32);

  // Training: normalises with batch statistics, updates the running statistics and increments
  // num_batches_tracked (as PyTorch does; the counter is not used since momentum is fixed).
  // Eval: normalises with the running statistics and changes nothing.
  Tensor forward(const Tensor& x) override;
  // relu(forward(x) + residual) in one fused pass (ops::batch_norm_act); residual may be
  // undefined. Same effects on the running statistics as forward.
  Tensor forward_act(const Tensor& x, const Tensor& residual, bool relu);

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }
  int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }

 private:
  void count_batch();

  int64_t num_features_;
  double eps_, momentum_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

}  // namespace tranq
