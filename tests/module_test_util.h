#pragma once
// Small readers shared by the layer and module tests.
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tranq::test {

inline std::vector<std::string> names_of(const NamedTensors& v) {
  std::vector<std::string> out;
  for (const auto& [n, t] : v) out.push_back(n);
  return out;
}

// A tensor's values in double, read on the host from any device.
inline std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu()).to(DType::f64).to_vector<double>();
}

}  // namespace tranq::test
