#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "gradcheck.h"
#include "layers/functional.h"

using namespace tranq;

namespace {
// logits [[1,2,3],[1,0,-1]], labels [2,1]. Both rows are shifts of {0,-1,-2}, so with
// L = log(1 + e^-1 + e^-2) = 0.40760596444438...: logsumexp = 3 + L and 1 + L,
//   -log p[0,2] = L, -log p[1,1] = 1 + L          -> mean (1 + 2L)/2 = 0.90760596444438
//   mean_c(-log p) = lse - mean(x) = 1 + L in both rows
//   eps = 0.1: 0.9*L + 0.1*(1+L) = L + 0.1 and 1 + L -> mean 0.95760596444438
Tensor example_logits(DType dt) {
  return Tensor::from_vector<double>({1, 2, 3, 1, 0, -1}, {2, 3}).to(dt);
}
Tensor example_labels() {
  return Tensor::from_vector<int32_t>({2, 1}, {2});
}
const double kL = std::log(1 + std::exp(-1.0) + std::exp(-2.0));
}  // namespace

TEST(CrossEntropy, HandComputedExample) {
  EXPECT_NEAR(kL, 0.40760596444438, 1e-13);
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-13 : 1e-6;
    Tensor loss = ops::cross_entropy(example_logits(dt), example_labels());
    EXPECT_EQ(loss.shape(), Shape{});
    EXPECT_EQ(loss.dtype(), dt);
    EXPECT_NEAR(loss.item(), 0.90760596444438, tol);
    EXPECT_NEAR(ops::cross_entropy(example_logits(dt), example_labels(), 0.1).item(),
                0.95760596444438, tol);
  }
}

TEST(CrossEntropy, HandComputedGradient) {
  // dL/dlogits = (softmax - target) / N; softmax of {0,-1,-2} shifted = {q0,q1,q2}.
  const double z = 1 + std::exp(-1.0) + std::exp(-2.0);
  const double q0 = 1 / z, q1 = std::exp(-1.0) / z, q2 = std::exp(-2.0) / z;
  for (double eps : {0.0, 0.1}) {
    Tensor logits = example_logits(DType::f64).set_requires_grad(true);
    ops::cross_entropy(logits, example_labels(), eps).backward();
    const double off = eps / 3, on = 1 - eps + eps / 3;
    // Row 0 = {1,2,3}: probabilities {q2, q1, q0}, label 2. Row 1 = {1,0,-1}: {q0,q1,q2}, label 1.
    const std::vector<double> want{(q2 - off) / 2, (q1 - off) / 2, (q0 - on) / 2,
                                   (q0 - off) / 2, (q1 - on) / 2,  (q2 - off) / 2};
    const std::vector<double> got = logits.grad().to_vector<double>();
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], want[i], 1e-14) << "eps " << eps << " i " << i;
  }
  // Pinned against an independent evaluation (python, math module) for eps = 0.
  Tensor logits = example_logits(DType::f64).set_requires_grad(true);
  ops::cross_entropy(logits, example_labels()).backward();
  EXPECT_NEAR(logits.grad().to_vector<double>()[2], -0.16737952211258916, 1e-15);
  EXPECT_NEAR(logits.grad().to_vector<double>()[3], 0.33262047788741095, 1e-15);
}

TEST(CrossEntropy, GradientCheck) {
  Tensor labels = Tensor::from_vector<int32_t>({3, 0, 4, 1}, {4});
  for (double eps : {0.0, 0.2}) {
    Tensor logits = test::random_tensor({4, 5}, 3, -3.0, 3.0).set_requires_grad(true);
    test::expect_gradients_match(
        [labels, eps](const std::vector<Tensor>& in) {
          return ops::cross_entropy(in[0], labels, eps);
        },
        {logits});
  }
  // Scaling the loss scales the gradient (the incoming gradient is honoured).
  Tensor logits = test::random_tensor({4, 5}, 4, -3.0, 3.0).set_requires_grad(true);
  ops::cross_entropy(logits, labels).backward();
  const std::vector<double> g1 = logits.grad().to_vector<double>();
  logits.zero_grad();
  ops::scale(ops::cross_entropy(logits, labels), 3.0).backward();
  const std::vector<double> g3 = logits.grad().to_vector<double>();
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_NEAR(g3[i], 3 * g1[i], 1e-14);
}

TEST(CrossEntropy, StableForLargeLogitsAndI64Labels) {
  Tensor logits = Tensor::from_vector<float>({1000, 0, 0, 1000}, {2, 2});
  // Row 0 is right with certainty (loss 0), row 1 wrong by 1000: mean 500.
  Tensor labels = Tensor::from_vector<int64_t>({0, 0}, {2});
  Tensor loss = ops::cross_entropy(logits, labels);
  EXPECT_TRUE(std::isfinite(loss.item()));
  EXPECT_NEAR(loss.item(), 500.0, 1e-3);
}

TEST(CrossEntropy, BadLabelsThrowNamingTheLabel) {
  Tensor logits = Tensor::zeros({2, 3});
  try {
    ops::cross_entropy(logits, Tensor::from_vector<int32_t>({0, 3}, {2}));
    FAIL() << "no exception for label 3 with 3 classes";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("label 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_vector<int32_t>({-1, 0}, {2})), ValueError);
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_vector<int32_t>({0}, {1})), ValueError);
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_vector<float>({0, 1}, {2})), ValueError);
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_vector<int32_t>({0, 1}, {2}), 1.5),
               ValueError);
}

TEST(CrossEntropy, LabelsCheckedSkipsOnlyTheOpsOwnCheck) {
  const Tensor logits = test::random_tensor({4, 3}, 21, -2.0, 2.0, DType::f32);
  const Tensor labels = Tensor::from_vector<int32_t>({2, 0, 1, 1}, {4});
  // Same loss either way for valid labels.
  EXPECT_EQ(ops::cross_entropy(logits, labels, 0.1, true).item(),
            ops::cross_entropy(logits, labels, 0.1, false).item());
  // The CPU kernel still refuses a bad label (it indexes rows by label on the host anyway).
  EXPECT_THROW(
      ops::cross_entropy(logits, Tensor::from_vector<int32_t>({0, 3, 0, 0}, {4}), 0.0, true),
      ValueError);
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_vector<int32_t>({0, 3, 0, 0}, {4})),
               ValueError);
}

TEST(CrossEntropy, ThreadCountInvariant) {
  Tensor logits = test::random_tensor({256, 100}, 5, -4.0, 4.0, DType::f32);
  std::vector<int32_t> lv;
  for (int i = 0; i < 256; ++i) lv.push_back((i * 37) % 100);
  Tensor labels = Tensor::from_vector(lv, {256});
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor l = logits.clone().set_requires_grad(true);
    Tensor loss = ops::cross_entropy(l, labels, 0.1);
    loss.backward();
    std::vector<float> out = l.grad().to_vector<float>();
    out.push_back(static_cast<float>(loss.item()));
    return out;
  };
  const int saved = num_threads();
  const std::vector<float> one = run(1), two = run(2);
  set_num_threads(saved);
  EXPECT_EQ(one, two);
}
