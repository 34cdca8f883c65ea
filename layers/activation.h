#pragma once
// Parameter-free activations: torch.nn.ReLU and torch.nn.ReLU6.
#include "layers/functional.h"
#include "layers/module.h"

namespace tranq {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return ops::relu(x); }
};

// min(max(x, 0), 6), MobileNetV2's activation.
class ReLU6 : public Module {
 public:
  Tensor forward(const Tensor& x) override { return ops::relu6(x); }
};

}  // namespace tranq
