#pragma once
// The --device flag of the CLI commands: where the model, its optimizer state and each batch
// live. The device lives on the tensors; these helpers only choose it and move to it.
#include <string>

#include "core/device.h"
#include "layers/module.h"

namespace tranq::app {

// "cpu", "cuda" or "cuda:N". For CUDA, initialises the backend: DeviceError "no CUDA device:
// <reason>" when the build has no CUDA backend or the machine has no usable GPU, and a
// DeviceError naming the devices found when N is out of range. ValueError for other names.
Device select_device(const std::string& name);

// The device of the module's first parameter (or buffer); the CPU for a module without any.
Device module_device(Module& m);

}  // namespace tranq::app
