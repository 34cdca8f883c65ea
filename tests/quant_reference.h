#pragma once
// Scalar reference of the quantizer (docs/qat.md), written independently of kernels/quant_math.h.
#include <algorithm>
#include <cmath>

#include "kernels/quant_math.h"

namespace tranq::test {

inline double ref_round_half_even(double v) {
  const double f = std::floor(v), d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0 ? f : f + 1;
}

// The code of an already scaled t = g*x/|s|.
inline int ref_code(double t, const kernels::QuantRange& r) {
  if (r.binary_sign) return t >= 0 ? 1 : -1;
  return static_cast<int>(ref_round_half_even(std::min(std::max(t, double(r.lo)), double(r.hi))));
}

}  // namespace tranq::test
