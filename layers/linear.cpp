#include "layers/linear.h"

#include <cmath>

#include "layers/functional.h"
#include "layers/init.h"

namespace tranq {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, DType dtype,
               std::optional<uint64_t> seed)
    : in_features_(in_features), out_features_(out_features) {
  TRANQ_CHECK(in_features > 0 && out_features > 0,
              "Linear: feature counts must be positive, got in={} out={}", in_features,
              out_features);
  TRANQ_CHECK(is_floating(dtype), "Linear: dtype must be f32 or f64, got {}", dtype_name(dtype));
  weight_ = register_parameter("weight", Tensor::empty({out_features, in_features}, dtype));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_features}, dtype));
  Rng rng(seed ? *seed : next_default_seed());
  reset_parameters(rng);
}

void Linear::reset_parameters(Rng& rng) {
  init::kaiming_uniform_(weight_, rng, std::sqrt(5.0));
  if (bias_.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
    init::uniform_(bias_, -bound, bound, rng);
  }
}

Tensor Linear::forward(const Tensor& x) {
  TRANQ_CHECK(x.dim() == 2 && x.size(1) == in_features_,
              "Linear: expected input [N, {}], got {} (flatten first)", in_features_,
              tensor_str(x));
  return ops::linear(x, weight_, bias_, compute_precision());
}

}  // namespace tranq
