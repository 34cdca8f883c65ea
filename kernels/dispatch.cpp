#include "kernels/dispatch.h"

namespace tranq::kernels {
void unsupported_device(const char* op, const Tensor& t) {
  TRANQ_THROW(DeviceError, "op '{}' has no implementation for {} tensors (got {})", op,
              t.device().str(), tensor_str(t));
}
}  // namespace tranq::kernels
