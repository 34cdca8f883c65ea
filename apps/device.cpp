#include "apps/device.h"

#include "core/error.h"
#include "kernels/cuda_runtime.h"

namespace tranq::app {

Device select_device(const std::string& name) {
  Device d;
  try {
    d = Device::parse(name);
  } catch (const ValueError&) {
    TRANQ_THROW(ValueError, "--device must be cpu, cuda or cuda:N, got '{}'", name);
  }
  if (d.is_cuda()) {
    cuda::init();  // throws "no CUDA device: ..." without one
    const int n = cuda::device_count();
    TRANQ_CHECK_AS(DeviceError, d.index < n,
                   "--device {}: this machine has {} CUDA device(s), cuda:0..cuda:{}", name, n,
                   n - 1);
  }
  return d;
}

Device module_device(Module& m) {
  for (auto& [n, t] : m.named_parameters()) return t.device();
  for (auto& [n, t] : m.named_buffers()) return t.device();
  return Device::cpu();
}

}  // namespace tranq::app
