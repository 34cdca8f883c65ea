#include "layers/dropout.h"

#include "layers/functional.h"

namespace tranq {

Dropout::Dropout(double p, std::optional<uint64_t> seed) : p_(p) {
  TRANQ_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got {}", p);
  // Drawn after the check, so a rejected p does not advance the default-seed source.
  rng_ = Rng(seed ? *seed : next_default_seed());
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  return ops::dropout(x, p_, true, rng_);
}

}  // namespace tranq
