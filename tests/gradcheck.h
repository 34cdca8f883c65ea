#pragma once
// Finite-difference gradient check in double precision. The function's output is reduced to a
// scalar with a fixed random projection, so every output element's gradient is exercised.
// Kinks (ReLU at 0, max-pool ties, clip edges) are detected where the left and right one-sided
// differences disagree; such coordinates are skipped and counted.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/rng.h"
#include "layers/functional.h"

namespace tranq::test {

// Expects f() to throw ValueError whose message contains `needle`.
template <class F>
void expect_value_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no ValueError; expected one mentioning '" << needle << "'";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

struct GradCheckOptions {
  double step = 1e-6;
  double tolerance = 1e-6;       // on |analytic - numeric| / max(1, |analytic|, |numeric|)
  double max_skipped_share = 0.05;
};

inline Tensor random_tensor(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                            DType dtype = DType::f64) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = rng.uniform(lo, hi);
  return Tensor::from_vector(v, shape).to(dtype);
}

// Same shape, dtype and bytes (any strides).
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

// inputs: f64 leaves. f: builds the output from them. Checks d(sum(out*R))/d(input) for every
// input with requires_grad.
inline void expect_gradients_match(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                   std::vector<Tensor> inputs, GradCheckOptions opt = {}) {
  Tensor out0 = f(inputs);
  Tensor proj = random_tensor(out0.shape(), 12345);
  auto loss_of = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    Tensor out = f(in).contiguous();
    const double* po = out.data<double>();
    const double* pr = proj.data<double>();
    double s = 0;
    for (int64_t i = 0; i < out.numel(); ++i) s += po[i] * pr[i];
    return s;
  };
  for (auto& t : inputs) t.zero_grad();
  ops::sum(ops::mul(out0, proj)).backward();

  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    if (!x.requires_grad()) continue;
    ASSERT_TRUE(x.grad().defined()) << "input " << k << " got no gradient";
    Tensor g = x.grad().contiguous();
    const double* pg = g.data<double>();
    double* px = x.data<double>();
    int64_t skipped = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = px[i];
      const double f0 = loss_of(inputs);
      px[i] = orig + opt.step;
      const double fp = loss_of(inputs);
      px[i] = orig - opt.step;
      const double fm = loss_of(inputs);
      px[i] = orig;
      const double right = (fp - f0) / opt.step, left = (f0 - fm) / opt.step;
      const double numeric = (fp - fm) / (2 * opt.step);
      const double kink_scale = std::max({1.0, std::fabs(left), std::fabs(right)});
      if (std::fabs(right - left) / kink_scale > 1e-3) {
        ++skipped;
        continue;
      }
      const double scale = std::max({1.0, std::fabs(pg[i]), std::fabs(numeric)});
      EXPECT_NEAR(pg[i] / scale, numeric / scale, opt.tolerance)
          << "input " << k << " element " << i << ": analytic " << pg[i] << " numeric " << numeric;
    }
    EXPECT_LE(skipped, static_cast<int64_t>(opt.max_skipped_share * x.numel()) + 1)
        << "too many kinks skipped for input " << k;
  }
}

}  // namespace tranq::test
