#pragma once
// torch.nn.Dropout (inverted): in training zeroes each element with probability p and scales the
// rest by 1/(1-p); identity in eval. The mask comes from the module's own Rng, whose state a
// trainer saves and restores (rng().key()/counter()/set_state()) to resume runs exactly. That
// Rng is Rng(seed); without a seed, Rng(next_default_seed()) (core/rng.h), so two default-built
// dropouts draw different masks, reproducibly after manual_seed().
#include <cstdint>
#include <optional>

#include "core/rng.h"
#include "layers/module.h"

namespace tranq {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, std::optional<uint64_t> seed = std::nullopt);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }
  Rng& rng() { return rng_; }

 private:
  double p_;
  Rng rng_;
};

}  // namespace tranq
