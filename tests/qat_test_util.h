#pragma once
// Helpers shared by the QAT layer, calibration and model-transform tests.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "layers/module.h"
#include "quant/qlayers.h"
#include "quant_reference.h"

namespace tranq::test {

// t = x * (g/|s|) evaluated in float, as the layers compute it; then clip and round.
inline int ref_code(float x, float s, const kernels::QuantRange& r) {
  return ref_code(static_cast<double>(x * (r.g / std::fabs(s))), r);
}

// Codes of an f32 tensor with scale [1] or [size(0)] along dim 0.
inline std::vector<int8_t> ref_codes(const Tensor& x, const Tensor& scale,
                                     const kernels::QuantRange& r) {
  auto v = x.contiguous().to_vector<float>();
  auto s = scale.contiguous().to_vector<float>();
  const int64_t per = x.numel() / static_cast<int64_t>(s.size());
  std::vector<int8_t> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(static_cast<int8_t>(ref_code(v[i], s[i / per], r)));
  return out;
}

inline quant::QuantSpec spec_of(int wbits, int abits, bool per_channel, bool learn = true,
                                quant::ScaleInit init = quant::ScaleInit::three_std) {
  quant::QuantSpec s;
  s.weight_bits = wbits;
  s.act_bits = abits;
  s.per_channel = per_channel;
  s.learn_weight_scale = learn;
  s.scale_init = init;
  return s;
}

struct Bits {
  int w, a;
};

inline std::vector<std::string> names_of(const NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

}  // namespace tranq::test
