#pragma once
// Linear: torch.nn.Linear. Parameters "weight" [out, in] and "bias" [out].
#include <cstdint>
#include <optional>

#include "core/rng.h"
#include "layers/compute_precision.h"
#include "layers/module.h"

namespace tranq {

// compute_precision() (fp32 by default) applies to the forward and both backward products.
class Linear : public Module, public ComputePrecisionSetting {
 public:
  // Initialised like PyTorch's reset_parameters from Rng(seed): weight kaiming_uniform(a=sqrt(5))
  // = U(-1/sqrt(in), 1/sqrt(in)), bias U(-1/sqrt(in), 1/sqrt(in)). Without a seed, the seed is
  // next_default_seed() (core/rng.h): default-built layers differ from one another and are
  // reproducible after manual_seed(); an explicit seed, 0 included, means Rng(seed).
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = DType::f32,
         std::optional<uint64_t> seed = std::nullopt);

  // x [N, in] -> [N, out].
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Rng& rng);

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

 private:
  int64_t in_features_, out_features_;
  Tensor weight_, bias_;
};

}  // namespace tranq
