#pragma once
// Conv2d: torch.nn.Conv2d with square kernels. Parameters "weight" [O, I/groups, K, K] and
// "bias" [O] (when bias is on), registered in that order as PyTorch does.
#include <cstdint>
#include <optional>

#include "core/rng.h"
#include "layers/compute_precision.h"
#include "layers/functional.h"
#include "layers/module.h"

namespace tranq {

// compute_precision() (fp32 by default) applies to the forward and both backward products.
class Conv2d : public Module, public ComputePrecisionSetting {
 public:
  // Initialised like PyTorch's reset_parameters from Rng(seed): weight kaiming_uniform(a=sqrt(5))
  // = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Without a
  // seed, the seed is next_default_seed() (core/rng.h), so default-built layers differ from one
  // another and are reproducible after manual_seed(); an explicit seed, 0 included, means
  // Rng(seed) and does not touch that source. Models re-initialise their convolutions with
  // their own scheme and seed.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true,
         DType dtype = DType::f32, std::optional<uint64_t> seed = std::nullopt);

  Tensor forward(const Tensor& x) override;
  // PyTorch's default initialisation (see the constructor), drawing from rng.
  void reset_parameters(Rng& rng);

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias
  const ops::Conv2dParams& conv_params() const { return params_; }
  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int64_t kernel_size() const { return kernel_size_; }

 private:
  int64_t in_channels_, out_channels_, kernel_size_;
  ops::Conv2dParams params_;
  Tensor weight_, bias_;
};

}  // namespace tranq
