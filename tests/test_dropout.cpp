#include <gtest/gtest.h>

#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "gradcheck.h"
#include "layers/dropout.h"
#include "layers/functional.h"

using namespace tranq;

TEST(Dropout, IdentityWhenPIsZeroOrInEval) {
  Tensor x = test::random_tensor({4, 5}, 1);
  Rng rng(3);
  EXPECT_EQ(ops::dropout(x, 0.0, true, rng).to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(ops::dropout(x, 0.5, false, rng).to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(rng.counter(), 0u) << "identity draws no mask";
}

TEST(Dropout, TrainingDropsAboutPAndScalesSurvivors) {
  const double p = 0.3;
  const int64_t n = 200000;
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = test::random_tensor({n}, 2, 1.0, 2.0, dt);  // never zero
    Rng rng(5);
    Tensor y = ops::dropout(x, p, true, rng);
    EXPECT_EQ(rng.counter(), static_cast<uint64_t>(n)) << "one draw per element";
    const std::vector<double> xv = x.to(DType::f64).to_vector<double>();
    const std::vector<double> yv = y.to(DType::f64).to_vector<double>();
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (yv[i] == 0) {
        ++zeros;
      } else {
        EXPECT_NEAR(yv[i], xv[i] / (1 - p), 1e-6 * yv[i]);
      }
    }
    // Binomial std for n = 2e5 is ~0.001; 0.01 is ten of them.
    EXPECT_NEAR(static_cast<double>(zeros) / n, p, 0.01);
  }
}

TEST(Dropout, SameRngStateSameMaskAndRngAdvances) {
  Tensor x = Tensor::ones({1000});
  Rng a(9), b(9);
  const std::vector<float> ya = ops::dropout(x, 0.5, true, a).to_vector<float>();
  const std::vector<float> yb = ops::dropout(x, 0.5, true, b).to_vector<float>();
  EXPECT_EQ(ya, yb);
  const std::vector<float> next = ops::dropout(x, 0.5, true, a).to_vector<float>();
  EXPECT_NE(ya, next) << "the rng advanced, so the next mask differs";
  Rng c(10);
  EXPECT_NE(ops::dropout(x, 0.5, true, c).to_vector<float>(), ya);
}

TEST(Dropout, MaskIndependentOfThreadCount) {
  Tensor x = Tensor::ones({100000});
  const int saved = num_threads();
  set_num_threads(1);
  Rng a(11);
  const std::vector<float> one = ops::dropout(x, 0.2, true, a).to_vector<float>();
  set_num_threads(2);
  Rng b(11);
  const std::vector<float> two = ops::dropout(x, 0.2, true, b).to_vector<float>();
  set_num_threads(saved);
  EXPECT_EQ(one, two);
}

TEST(Dropout, GradientIsMaskTimesScale) {
  const double p = 0.25;
  Tensor x = test::random_tensor({50, 40}, 4, 0.5, 1.5).set_requires_grad(true);
  Rng rng(6);
  Tensor y = ops::dropout(x, p, true, rng);
  Tensor g = test::random_tensor({50, 40}, 7);
  y.backward(g);
  const std::vector<double> yv = y.to_vector<double>(), gv = g.to_vector<double>(),
                            dx = x.grad().to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) {
    const double mask_scale = yv[i] != 0 ? 1.0 / (1 - p) : 0.0;
    EXPECT_DOUBLE_EQ(dx[i], gv[i] * mask_scale);
  }
}

TEST(Dropout, AllDroppedAtPOneAndBadP) {
  Tensor x = Tensor::ones({100});
  Rng rng(1);
  for (float v : ops::dropout(x, 1.0, true, rng).to_vector<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_THROW(ops::dropout(x, 1.5, true, rng), ValueError);
  EXPECT_THROW(ops::dropout(x, -0.1, true, rng), ValueError);
  // The module takes p = 1 too (as torch.nn.Dropout does), and rejects p outside [0, 1].
  Dropout all(1.0, 3);
  all.train();
  for (float v : all(x).to_vector<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_THROW(Dropout(1.5, 3), ValueError);
}
