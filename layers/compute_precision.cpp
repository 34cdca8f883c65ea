#include "layers/compute_precision.h"

namespace tranq {

int64_t set_compute_precision(Module& root, ComputePrecision p) {
  int64_t count = 0;
  for (const auto& [name, m] : root.named_modules()) {
    // A cross-cast: the layers derive from Module and, beside it, ComputePrecisionSetting.
    if (auto* s = dynamic_cast<ComputePrecisionSetting*>(m)) {
      s->set_compute_precision(p);
      ++count;
    }
  }
  return count;
}

}  // namespace tranq
