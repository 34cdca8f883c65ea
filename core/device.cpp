#include "core/device.h"

#include <cstdlib>

#include "core/error.h"

namespace tranq {

std::string Device::str() const {
  if (type == DeviceType::cpu) return "cpu";
  return index == 0 ? std::string("cuda") : fmt::format("cuda:{}", index);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    char* end = nullptr;
    long i = std::strtol(s.c_str() + 5, &end, 10);
    if (*end == '\0' && i >= 0) return cuda(static_cast<int>(i));
  }
  TRANQ_THROW(ValueError, "unknown device '{}': expected cpu, cuda or cuda:N", s);
}

}  // namespace tranq
