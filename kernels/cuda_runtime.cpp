// Fallback used when the CUDA backend is not compiled in.
#include "kernels/cuda_runtime.h"

#include "core/error.h"
#include "tranq/config.h"

#if !TRANQ_WITH_CUDA
namespace tranq::cuda {
int device_count(std::string* why) {
  if (why) *why = "this build of tranq has no CUDA backend (configured with TRANQ_CUDA=OFF or no nvcc)";
  return 0;
}
void init() {
  std::string why;
  device_count(&why);
  TRANQ_THROW(DeviceError, "no CUDA device: {}", why);
}
}  // namespace tranq::cuda
#endif
