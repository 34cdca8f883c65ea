#pragma once
// The CUDA backend's entry points, callable from any build: without the CUDA backend (or
// without a GPU) they report that no device is available instead of failing to link.
#include <string>

namespace tranq::cuda {

// Number of usable CUDA devices; 0 when the build has no CUDA backend or the driver/runtime
// answers with an error ("driver version is insufficient" on machines without a driver).
// When 0 and why is given, *why says the reason.
int device_count(std::string* why = nullptr);

// Registers the CUDA device backend (memory, copies) with core so tensors can live on the GPU.
// Throws DeviceError("no CUDA device: ...") when device_count() is 0.
void init();

}  // namespace tranq::cuda
