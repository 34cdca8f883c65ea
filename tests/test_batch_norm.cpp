#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "gradcheck.h"
#include "layers/functional.h"

using namespace tranq;

namespace {

// Batch norm from its definition: per channel, mean and biased variance over N and H*W.
std::vector<double> reference_bn(const Tensor& x, const std::vector<double>& w,
                                 const std::vector<double>& b, bool use_batch,
                                 const std::vector<double>& rm, const std::vector<double>& rv,
                                 double eps = 1e-5) {
  const Tensor xd = x.to(DType::f64);
  const std::vector<double> v = xd.to_vector<double>();
  const int64_t n = x.size(0), c = x.size(1), inner = x.numel() / (n * c);
  std::vector<double> y(v.size());
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean = 0, var = 0;
    if (use_batch) {
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < inner; ++k) mean += v[(i * c + ch) * inner + k];
      mean /= static_cast<double>(n * inner);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < inner; ++k) {
          const double d = v[(i * c + ch) * inner + k] - mean;
          var += d * d;
        }
      var /= static_cast<double>(n * inner);
    } else {
      mean = rm[ch];
      var = rv[ch];
    }
    const double wc = w.empty() ? 1.0 : w[ch], bc = b.empty() ? 0.0 : b[ch];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k) {
        const int64_t at = (i * c + ch) * inner + k;
        y[at] = (v[at] - mean) / std::sqrt(var + eps) * wc + bc;
      }
  }
  return y;
}

void expect_close(const Tensor& t, const std::vector<double>& ref, double tol) {
  const std::vector<double> got = t.to(DType::f64).to_vector<double>();
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], tol) << "element " << i;
}

}  // namespace

TEST(BatchNorm, TrainMatchesDefinition4d) {
  // inner = 35 is not a multiple of the kernel's 8 accumulator lanes: exercises the tail.
  for (Shape shape : {Shape{3, 4, 5, 7}, Shape{2, 3, 4, 4}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      Tensor x = test::random_tensor(shape, 1, -2.0, 3.0, dt);
      const int64_t c = shape[1];
      std::vector<double> w, b;
      for (int64_t i = 0; i < c; ++i) {
        w.push_back(0.5 + 0.25 * static_cast<double>(i));
        b.push_back(-0.3 * static_cast<double>(i));
      }
      Tensor tw = Tensor::from_vector(w, {c}).to(dt), tb = Tensor::from_vector(b, {c}).to(dt);
      Tensor y = ops::batch_norm(x, tw, tb, Tensor(), Tensor(), true);
      EXPECT_EQ(y.shape(), shape);
      EXPECT_EQ(y.dtype(), dt);
      expect_close(y, reference_bn(x, w, b, true, {}, {}), dt == DType::f64 ? 1e-12 : 2e-5);
    }
  }
}

TEST(BatchNorm, TwoDimensionalInputAndAffineOff) {
  Tensor x = test::random_tensor({6, 5}, 2, -1.0, 1.0);
  Tensor y = ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  expect_close(y, reference_bn(x, {}, {}, true, {}, {}), 1e-12);
  // Normalised columns: mean 0, biased variance 1 (up to eps).
  const std::vector<double> v = y.to_vector<double>();
  for (int c = 0; c < 5; ++c) {
    double m = 0, s = 0;
    for (int i = 0; i < 6; ++i) m += v[i * 5 + c] / 6;
    for (int i = 0; i < 6; ++i) s += (v[i * 5 + c] - m) * (v[i * 5 + c] - m) / 6;
    EXPECT_NEAR(m, 0.0, 1e-12);
    EXPECT_NEAR(s, 1.0, 1e-3);
  }
}

TEST(BatchNorm, RunningStatsAfterTwoSteps) {
  // x [4, 2]: channel 0 then channel 1 per row.
  // step 1: ch0 = {1,2,3,4}: mean 2.5, unbiased var 5/3; ch1 = {10,10,10,10}: mean 10, var 0.
  // step 2: ch0 = {0,0,0,4}: mean 1, unbiased var 4; ch1 = {-2,2,-2,2}: mean 0, var 16/3.
  // From (mean 0, var 1):
  //   ch0: mean 0.1*2.5 = 0.25 -> 0.9*0.25 + 0.1*1 = 0.325
  //        var 0.9 + 0.1*5/3 = 1.0666.. -> 0.9*1.0666.. + 0.1*4 = 1.36
  //   ch1: mean 1 -> 0.9; var 0.9 -> 0.81 + 0.1*16/3 = 1.34333..
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor rm = Tensor::zeros({2}, dt), rv = Tensor::ones({2}, dt);
    Tensor x1 = Tensor::from_vector<double>({1, 10, 2, 10, 3, 10, 4, 10}, {4, 2}).to(dt);
    Tensor x2 = Tensor::from_vector<double>({0, -2, 0, 2, 0, -2, 4, 2}, {4, 2}).to(dt);
    Tensor y1 = ops::batch_norm(x1, Tensor(), Tensor(), rm, rv, true);
    // A constant channel normalises to exactly zero.
    for (int i = 0; i < 4; ++i) EXPECT_EQ(y1.to(DType::f64).to_vector<double>()[i * 2 + 1], 0.0);
    ops::batch_norm(x2, Tensor(), Tensor(), rm, rv, true);
    const double tol = dt == DType::f64 ? 1e-12 : 1e-6;
    const std::vector<double> m = rm.to(DType::f64).to_vector<double>();
    const std::vector<double> v = rv.to(DType::f64).to_vector<double>();
    EXPECT_NEAR(m[0], 0.325, tol);
    EXPECT_NEAR(m[1], 0.9, tol);
    EXPECT_NEAR(v[0], 1.36, tol);
    EXPECT_NEAR(v[1], 0.81 + 1.6 / 3.0, tol);
  }
}

TEST(BatchNorm, EvalUsesRunningStatsAndLeavesThemAlone) {
  Tensor x = test::random_tensor({2, 3, 3, 2}, 3, -1.0, 2.0);
  std::vector<double> rmv{0.5, -1.0, 2.0}, rvv{1.5, 0.25, 4.0}, w{1.0, 2.0, -0.5}, b{0.1, 0, 3};
  Tensor rm = Tensor::from_vector(rmv, {3}), rv = Tensor::from_vector(rvv, {3});
  Tensor y =
      ops::batch_norm(x, Tensor::from_vector(w, {3}), Tensor::from_vector(b, {3}), rm, rv, false);
  expect_close(y, reference_bn(x, w, b, false, rmv, rvv), 1e-12);
  EXPECT_EQ(rm.to_vector<double>(), rmv);
  EXPECT_EQ(rv.to_vector<double>(), rvv);
  // Affine off in eval.
  Tensor y2 = ops::batch_norm(x, Tensor(), Tensor(), rm, rv, false);
  expect_close(y2, reference_bn(x, {}, {}, false, rmv, rvv), 1e-12);
}

TEST(BatchNorm, LargeMeanKeepsVarianceAccurateInF32) {
  // |mean| / std = 1e4: a naive one-pass E[x^2]-E[x]^2 in float would lose the variance.
  std::vector<float> v;
  for (int i = 0; i < 256; ++i) v.push_back(10000.0f + static_cast<float>(i % 4) - 1.5f);
  Tensor x = Tensor::from_vector(v, {64, 1, 2, 2});
  Tensor y = ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  // Values -1.5, -0.5, 0.5, 1.5: biased variance 1.25.
  const std::vector<float> out = y.to_vector<float>();
  EXPECT_NEAR(out[0], -1.5 / std::sqrt(1.25 + 1e-5), 1e-4);
  EXPECT_NEAR(out[3], 1.5 / std::sqrt(1.25 + 1e-5), 1e-4);
}

TEST(BatchNorm, GradientsTrainMode) {
  for (Shape shape : {Shape{3, 2, 3, 3}, Shape{5, 3}}) {
    const int64_t c = shape[1];
    Tensor x = test::random_tensor(shape, 10, -1.0, 1.0);
    Tensor w = test::random_tensor({c}, 11, 0.5, 1.5);
    Tensor b = test::random_tensor({c}, 12, -0.5, 0.5);
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    test::expect_gradients_match(
        [](const std::vector<Tensor>& in) {
          return ops::batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true);
        },
        {x, w, b});
  }
}

TEST(BatchNorm, GradientsTrainModeAffineOffAndEvalMode) {
  Tensor x = test::random_tensor({2, 3, 2, 3}, 20, -1.0, 1.0);
  x.set_requires_grad(true);
  test::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        return ops::batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {x});
  Tensor rm = test::random_tensor({3}, 21, -0.5, 0.5), rv = test::random_tensor({3}, 22, 0.5, 2);
  Tensor w = test::random_tensor({3}, 23, 0.5, 1.5), b = test::random_tensor({3}, 24);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  test::expect_gradients_match(
      [rm, rv](const std::vector<Tensor>& in) {
        return ops::batch_norm(in[0], in[1], in[2], rm, rv, false);
      },
      {x, w, b});
}

TEST(BatchNorm, OnlyRequestedGradientsAreComputed) {
  Tensor x = test::random_tensor({4, 2, 2, 2}, 30);
  Tensor w = Tensor::ones({2}, DType::f64).set_requires_grad(true);
  Tensor b = Tensor::zeros({2}, DType::f64);
  ops::sum(ops::batch_norm(x, w, b, Tensor(), Tensor(), true)).backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  // d/dw of sum(xhat*w) is sum(xhat) = 0 per channel.
  for (double g : w.grad().to_vector<double>()) EXPECT_NEAR(g, 0.0, 1e-12);
}

TEST(BatchNorm, F32MatchesF64AndIsThreadCountInvariant) {
  // Large enough for the parallel path.
  Tensor x = test::random_tensor({8, 16, 16, 16}, 40, -2.0, 2.0, DType::f32);
  Tensor dy = test::random_tensor({8, 16, 16, 16}, 41, -1.0, 1.0, DType::f32);
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor xi = x.clone().set_requires_grad(true);
    Tensor w = Tensor::full({16}, 1.5).set_requires_grad(true);
    Tensor rm = Tensor::zeros({16}), rv = Tensor::ones({16});
    Tensor y = ops::batch_norm(xi, w, Tensor(), rm, rv, true);
    y.backward(dy);
    return std::vector<std::vector<float>>{y.to_vector<float>(), xi.grad().to_vector<float>(),
                                           w.grad().to_vector<float>(), rm.to_vector<float>(),
                                           rv.to_vector<float>()};
  };
  const int saved = num_threads();
  auto one = run(1), two = run(2);
  set_num_threads(saved);
  for (size_t k = 0; k < one.size(); ++k) EXPECT_EQ(one[k], two[k]) << "output " << k;

  Tensor xd = x.to(DType::f64).set_requires_grad(true);
  Tensor wd = Tensor::full({16}, 1.5, DType::f64).set_requires_grad(true);
  Tensor yd = ops::batch_norm(xd, wd, Tensor(), Tensor(), Tensor(), true);
  yd.backward(dy.to(DType::f64));
  const std::vector<double> yr = yd.to_vector<double>(), gr = xd.grad().to_vector<double>();
  for (size_t i = 0; i < yr.size(); i += 97) {
    EXPECT_NEAR(one[0][i], yr[i], 1e-5);
    EXPECT_NEAR(one[1][i], gr[i], 1e-5);
  }
}

TEST(BatchNorm, RejectsBadArguments) {
  Tensor x = Tensor::zeros({1, 3});
  EXPECT_THROW(ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true), ValueError);
  Tensor x2 = Tensor::zeros({4, 3});
  EXPECT_THROW(ops::batch_norm(x2, Tensor::ones({2}), Tensor(), Tensor(), Tensor(), true),
               ValueError);
  EXPECT_THROW(
      ops::batch_norm(x2, Tensor::ones({3}, DType::f64), Tensor(), Tensor(), Tensor(), true),
      ValueError);
  EXPECT_THROW(ops::batch_norm(x2, Tensor(), Tensor(), Tensor::zeros({3}), Tensor(), true),
               ValueError);
  EXPECT_THROW(ops::batch_norm(Tensor::zeros({4}), Tensor(), Tensor(), Tensor(), Tensor(), true),
               ValueError);
}
