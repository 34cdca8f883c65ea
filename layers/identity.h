#pragma once
// torch.nn.Identity: returns its input (the same tensor handle, so autograd passes through).
#include "layers/module.h"

namespace tranq {

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace tranq
