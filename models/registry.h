#pragma once
// Models by name, for the CLI and configs.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"

namespace tranq {

// "resnet20", "resnet18", "resnet34", "mobilenet_v2", in that order.
std::vector<std::string> model_names();

// A freshly initialised f32 model on the CPU, a pure function of (name, in_channels,
// num_classes, seed). Throws ValueError "unknown model 'x'; known: ..." for other names.
std::shared_ptr<Module> create_model(const std::string& name, int64_t in_channels,
                                     int64_t num_classes, uint64_t seed);

}  // namespace tranq
