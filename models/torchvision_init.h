#pragma once
// The weight initialisation torchvision's model constructors apply, drawn from per-module random
// streams Rng(seed, init::stream_id(module path)), so a model is a pure function of its seed and
// one module's values do not depend on how many values other modules drew.
//   Conv2d:      kaiming_normal_(mode='fan_out', nonlinearity='relu'), bias zero.
//   BatchNorm2d: weight 1, bias 0 (running statistics keep their defaults).
//   Linear:      pytorch_default: nn.Linear's own reset_parameters (ResNet leaves it alone),
//                i.e. U(-1/sqrt(in), 1/sqrt(in)) for weight and bias;
//                normal_0_01: weight N(0, 0.01), bias 0 (MobileNetV2's classifier).
#include <cstdint>

#include "layers/module.h"

namespace tranq::models {

enum class LinearInit { pytorch_default, normal_0_01 };

void torchvision_init(Module& model, uint64_t seed, LinearInit linear_init);

}  // namespace tranq::models
