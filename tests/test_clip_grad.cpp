// Gradient clipping by global norm (optim/clip_grad.h), against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/elementwise.h"
#include "optim/clip_grad.h"

using namespace tranq;

namespace {

Tensor param_with_grad(const std::vector<double>& g) {
  Tensor p = Tensor::zeros({static_cast<int64_t>(g.size())}, DType::f64);
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector(g, {static_cast<int64_t>(g.size())}));
  return p;
}

}  // namespace

TEST(ClipGradNorm, ScalesAllGradientsByOneFactorAboveTheLimit) {
  // Norm of (3, 4, 12) = 13.
  Tensor a = param_with_grad({3, 4}), b = param_with_grad({12}), none = param_with_grad({});
  none.set_grad(Tensor());
  const Tensor a_grad = a.grad();
  EXPECT_EQ(optim::clip_grad_norm({a, none, b}, 6.5), 13.0);
  const double coef = 6.5 / (13.0 + 1e-6);
  const std::vector<double> ga = a.grad().to_vector<double>(), gb = b.grad().to_vector<double>();
  EXPECT_DOUBLE_EQ(ga[0], 3 * coef);
  EXPECT_DOUBLE_EQ(ga[1], 4 * coef);
  EXPECT_DOUBLE_EQ(gb[0], 12 * coef);
  EXPECT_FALSE(none.grad().defined());
  // A copy replaces the gradient: a tensor that was the gradient (and may be shared) is intact.
  EXPECT_EQ(a_grad.to_vector<double>(), (std::vector<double>{3, 4}));
}

TEST(ClipGradNorm, GradientsOfMixedDtypesMakeOneNorm) {
  Tensor a = param_with_grad({3, 4});  // f64
  Tensor b = Tensor::zeros({1});       // f32
  b.set_requires_grad(true);
  b.set_grad(Tensor::from_vector<float>({12}, {1}));
  EXPECT_EQ(optim::clip_grad_norm({a, b}, 6.5), 13.0);
  EXPECT_FLOAT_EQ(b.grad().to_vector<float>()[0], static_cast<float>(12 * 6.5 / (13.0 + 1e-6)));
  EXPECT_DOUBLE_EQ(a.grad().to_vector<double>()[1], 4 * 6.5 / (13.0 + 1e-6));
}

TEST(ClipGradNorm, LeavesGradientsAtOrBelowTheLimitAlone) {
  Tensor a = param_with_grad({3, 4});
  const Tensor before = a.grad();
  EXPECT_EQ(optim::clip_grad_norm({a}, 5.0), 5.0);  // 5 / (5 + 1e-6) < 1: clipped
  EXPECT_LT(a.grad().to_vector<double>()[0], 3.0);
  Tensor b = param_with_grad({3, 4});
  const Tensor kept = b.grad();
  EXPECT_EQ(optim::clip_grad_norm({b}, 100.0), 5.0);
  EXPECT_TRUE(b.grad().same_as(kept)) << "nothing to scale: the gradient stays as it was";
  EXPECT_EQ(optim::clip_grad_norm({Tensor::zeros({2})}, 1.0), 0.0) << "no gradient at all";
  EXPECT_THROW(optim::clip_grad_norm({b}, 0.0), ValueError);
  EXPECT_THROW(optim::clip_grad_norm({b}, -1.0), ValueError);
  EXPECT_THROW(optim::clip_grad_norm({b}, std::nan("")), ValueError);
}

TEST(SumSquares, SumsSquaresInDoubleForEveryDtype) {
  Tensor out = Tensor::empty({}, DType::f64);
  kernels::sum_squares(Tensor::from_vector<double>({3, -4, 12}, {3}), out);
  EXPECT_EQ(out.item(), 169.0);
  // f32 squares would round (16777217^2) or overflow (1e20^2 > FLT_MAX); in double they do not.
  kernels::sum_squares(Tensor::from_vector<float>({1e20f, -1e20f}, {2}), out);
  EXPECT_DOUBLE_EQ(out.item(), 2.0 * static_cast<double>(1e20f) * static_cast<double>(1e20f));
  // Across many 4096-element chunks, split over threads: the same as one serial sum of squares.
  std::vector<float> v(10000);
  double want = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<float>(i % 7) - 3.0f;
    want += static_cast<double>(v[i]) * v[i];
  }
  kernels::sum_squares(Tensor::from_vector<float>(v, {10000}), out);
  EXPECT_EQ(out.item(), want);  // integers below 2^53: exact in any order
  kernels::sum_squares(Tensor::zeros({0}), out);
  EXPECT_EQ(out.item(), 0.0);
  EXPECT_THROW(kernels::sum_squares(Tensor::zeros({2}), Tensor::empty({}, DType::f32)), ValueError);
  EXPECT_THROW(
      kernels::sum_squares(Tensor::zeros({2, 2}).transpose(0, 1), Tensor::empty({}, DType::f64)),
      ValueError);
}

TEST(ClipGradNorm, F32GradientsWhoseSquaresOverflowF32StillClip) {
  Tensor p = Tensor::zeros({2});
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector<float>({3e20f, 4e20f}, {2}));
  const double norm = optim::clip_grad_norm({p}, 1.0);
  EXPECT_NEAR(norm, 5e20, 5e20 * 1e-6);
  const std::vector<float> g = p.grad().to_vector<float>();
  EXPECT_NEAR(g[0], 0.6f, 1e-6);
  EXPECT_NEAR(g[1], 0.8f, 1e-6);
}

TEST(ScaleGrads, ReplacesEachDefinedGradientWithAScaledCopy) {
  Tensor a = param_with_grad({1, -2}), none = param_with_grad({});
  none.set_grad(Tensor());
  const Tensor old = a.grad();
  optim::scale_grads({a, none}, 1.5);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1.5, -3}));
  EXPECT_EQ(old.to_vector<double>(), (std::vector<double>{1, -2})) << "not written in place";
  EXPECT_FALSE(none.grad().defined());
  EXPECT_THROW(optim::scale_grads({a}, std::nan("")), ValueError);
}

TEST(ClipGradNorm, ANanGradientGivesNanGradientsNotAnError) {
  // As torch: the norm is NaN, every gradient is multiplied by NaN; the trainer's divergence
  // check then reports it.
  Tensor a = param_with_grad({1, std::nan(""), 2}), b = param_with_grad({3});
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm({a, b}, 1.0)));
  EXPECT_TRUE(std::isnan(b.grad().to_vector<double>()[0]));
  // An infinite gradient: the factor is 0, as in torch.
  Tensor c = param_with_grad({std::numeric_limits<double>::infinity(), 1});
  EXPECT_EQ(optim::clip_grad_norm({c}, 1.0), std::numeric_limits<double>::infinity());
  EXPECT_EQ(c.grad().to_vector<double>()[1], 0.0);
}
