#pragma once
// torch.nn.Flatten: merges the dimensions from start_dim on (default 1: [N, C, H, W] -> [N, CHW]).
#include <cstdint>

#include "layers/functional.h"
#include "layers/module.h"

namespace tranq {

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1) : start_dim_(start_dim) {}
  Tensor forward(const Tensor& x) override { return ops::flatten(x, start_dim_); }
  int64_t start_dim() const { return start_dim_; }

 private:
  int64_t start_dim_;
};

}  // namespace tranq
