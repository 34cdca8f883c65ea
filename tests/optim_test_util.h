// Shared fixtures of the optimizer tests: one three-element parameter and three fixed gradients.
#pragma once

#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace tranq::test {

inline const std::vector<double> kInit = {1.0, -2.0, 0.5};
inline const std::vector<std::vector<double>> kGrads = {
    {0.5, -1.0, 0.25}, {-0.3, 0.8, 0.1}, {0.2, 0.4, -0.6}};

inline Tensor make_param(DType dt = DType::f64, const std::vector<double>& v = kInit) {
  Tensor p = Tensor::from_vector<double>(v, {static_cast<int64_t>(v.size())}).to(dt);
  p.set_requires_grad(true);
  return p;
}

inline Tensor grad_of(const std::vector<double>& g, DType dt) {
  return Tensor::from_vector<double>(g, {static_cast<int64_t>(g.size())}).to(dt);
}

inline std::vector<double> values(const Tensor& t) {
  return t.to(DType::f64).to_vector<double>();
}

inline optim::ParamGroup group_of(const std::string& name, const Tensor& p) {
  optim::ParamGroup g;
  g.names = {name};
  g.params = {p};
  return g;
}

}  // namespace tranq::test
