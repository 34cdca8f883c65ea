// The fused batch norm + residual + ReLU against its specification, the unfused chain.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "gradcheck.h"
#include "kernels/batch_norm_act.h"
#include "layers/batch_norm.h"
#include "layers/functional.h"

using namespace tranq;

namespace {

struct Inputs {
  Tensor x, w, b, r;
};

Inputs make_inputs(const Shape& shape, DType dtype, uint64_t seed) {
  const int64_t c = shape[1];
  Inputs in;
  in.x = test::random_tensor(shape, seed, -1.0, 1.0, dtype);
  in.w = test::random_tensor({c}, seed + 1, 0.5, 1.5, dtype);
  in.b = test::random_tensor({c}, seed + 2, -0.5, 0.5, dtype);
  in.r = test::random_tensor(shape, seed + 3, -1.0, 1.0, dtype);
  return in;
}

Tensor chain(const Inputs& in, const Tensor& rm, const Tensor& rv, bool training, bool residual,
             bool relu) {
  Tensor y = ops::batch_norm(in.x, in.w, in.b, rm, rv, training);
  if (residual) y = ops::add(y, in.r);
  return relu ? ops::relu(y) : y;
}

Tensor fused(const Inputs& in, const Tensor& rm, const Tensor& rv, bool training, bool residual,
             bool relu) {
  return ops::batch_norm_act(in.x, in.w, in.b, rm, rv, training, 0.1, 1e-5,
                             residual ? in.r : Tensor(), relu);
}

std::vector<Tensor> grads_of(const Inputs& in) {
  return {in.x.grad(), in.w.grad(), in.b.grad(), in.r.grad()};
}

void require_grads(Inputs& in) {
  for (Tensor* t : {&in.x, &in.w, &in.b, &in.r}) {
    t->zero_grad();
    t->set_requires_grad(true);
  }
}

}  // namespace

// Forward: the same float operations in the same order, so f32 results are bit-identical to
// the chain; backward: the same sums, so the gradients agree to rounding.
TEST(BatchNormAct, MatchesUnfusedChainInF32) {
  for (bool residual : {false, true}) {
    for (bool relu : {false, true}) {
      Inputs a = make_inputs({4, 3, 5, 7}, DType::f32, 7);
      Inputs b{a.x.clone(), a.w.clone(), a.b.clone(), a.r.clone()};
      require_grads(a);
      require_grads(b);
      Tensor rm1 = Tensor::zeros({3}), rv1 = Tensor::ones({3});
      Tensor rm2 = Tensor::zeros({3}), rv2 = Tensor::ones({3});
      Tensor ya = chain(a, rm1, rv1, true, residual, relu);
      Tensor yb = fused(b, rm2, rv2, true, residual, relu);
      EXPECT_TRUE(test::bitwise_equal(ya, yb)) << "residual=" << residual << " relu=" << relu;
      EXPECT_TRUE(test::bitwise_equal(rm1, rm2));
      EXPECT_TRUE(test::bitwise_equal(rv1, rv2));
      Tensor proj = test::random_tensor(ya.shape(), 99, -1.0, 1.0, DType::f32);
      ops::sum(ops::mul(ya, proj)).backward();
      ops::sum(ops::mul(yb, proj)).backward();
      const std::vector<Tensor> ga = grads_of(a), gb = grads_of(b);
      for (size_t k = 0; k < 3; ++k) {
        ASSERT_TRUE(gb[k].defined()) << "input " << k;
        const std::vector<float> va = ga[k].to_vector<float>(), vb = gb[k].to_vector<float>();
        for (size_t i = 0; i < va.size(); ++i)
          EXPECT_NEAR(va[i], vb[i], 1e-5f * (1.0f + std::fabs(va[i]))) << k << " at " << i;
      }
      EXPECT_EQ(gb[3].defined(), residual);
      if (residual) {
        EXPECT_TRUE(test::bitwise_equal(ga[3], gb[3]));
      }
    }
  }
}

TEST(BatchNormAct, EvalModeMatchesChain) {
  Inputs a = make_inputs({3, 4, 2, 3}, DType::f64, 17);
  Tensor rm = test::random_tensor({4}, 30, -0.5, 0.5), rv = test::random_tensor({4}, 31, 0.5, 2);
  Tensor rm0 = rm.clone(), rv0 = rv.clone();
  Tensor ya = chain(a, rm, rv, false, true, true);
  Tensor yb = fused(a, rm, rv, false, true, true);
  EXPECT_TRUE(test::bitwise_equal(ya, yb));
  EXPECT_TRUE(test::bitwise_equal(rm, rm0));  // eval leaves the running statistics alone
  EXPECT_TRUE(test::bitwise_equal(rv, rv0));
}

// A NaN is not hidden by the ReLU (as in PyTorch), so a diverging network shows a NaN loss.
TEST(BatchNormAct, ReluKeepsNaN) {
  Inputs a = make_inputs({2, 3, 2, 2}, DType::f64, 41);
  a.x.data<double>()[5] = std::nan("");
  Tensor rm = test::random_tensor({3}, 42, -0.5, 0.5), rv = test::random_tensor({3}, 43, 0.5, 2);
  for (bool residual : {false, true}) {
    const std::vector<double> y = fused(a, rm, rv, false, residual, true).to_vector<double>();
    for (size_t i = 0; i < y.size(); ++i)
      EXPECT_EQ(std::isnan(y[i]), i == 5) << i << " residual " << residual;
    EXPECT_TRUE(std::isnan(chain(a, rm, rv, false, residual, true).to_vector<double>()[5]));
  }
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = Tensor::from_vector<double>({std::nan(""), -1.0, 0.5, 9.0}, {4}).to(dt);
    const std::vector<double> r = ops::relu(x).to(DType::f64).to_vector<double>();
    const std::vector<double> r6 = ops::relu6(x).to(DType::f64).to_vector<double>();
    EXPECT_TRUE(std::isnan(r[0]) && std::isnan(r6[0]));
    EXPECT_EQ(std::vector<double>(r.begin() + 1, r.end()), (std::vector<double>{0.0, 0.5, 9.0}));
    EXPECT_EQ(std::vector<double>(r6.begin() + 1, r6.end()), (std::vector<double>{0.0, 0.5, 6.0}));
  }
}

TEST(BatchNormAct, FiniteDifferenceGradients) {
  for (bool training : {true, false}) {
    Inputs in = make_inputs({3, 2, 3, 3}, DType::f64, 40);
    require_grads(in);
    Tensor rm = test::random_tensor({2}, 50, -0.2, 0.2),
           rv = test::random_tensor({2}, 51, 0.5, 1.5);
    test::expect_gradients_match(
        [&](const std::vector<Tensor>& v) {
          return ops::batch_norm_act(v[0], v[1], v[2], training ? Tensor() : rm,
                                     training ? Tensor() : rv, training, 0.1, 1e-5, v[3], true);
        },
        {in.x, in.w, in.b, in.r});
  }
}

// The kernel overwrites its outputs: stale contents must not leak into the result.
TEST(BatchNormAct, BackwardOverwritesOutputs) {
  Inputs in = make_inputs({2, 3, 4, 4}, DType::f64, 60);
  const int64_t c = 3;
  Tensor y = Tensor::empty_like(in.x), mean = Tensor::empty({c}, DType::f64),
         invstd = Tensor::empty({c}, DType::f64);
  kernels::batch_norm_act_forward(in.x, in.w, in.b, Tensor(), Tensor(), true, 0.1, 1e-5, in.r, true,
                                  y, mean, invstd);
  Tensor dy = test::random_tensor(in.x.shape(), 61);
  auto run = [&](double fill) {
    std::vector<Tensor> out = {
        Tensor::full(in.x.shape(), fill, DType::f64), Tensor::full(in.x.shape(), fill, DType::f64),
        Tensor::full({c}, fill, DType::f64), Tensor::full({c}, fill, DType::f64)};
    kernels::batch_norm_act_backward(in.x, y, dy, in.w, mean, invstd, true, true, out[0], out[1],
                                     out[2], out[3]);
    return out;
  };
  const std::vector<Tensor> a = run(0.0), b = run(123.0);
  for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(test::bitwise_equal(a[k], b[k])) << k;
  // dresidual is dy masked by the output.
  const std::vector<double> vy = y.to_vector<double>(), vg = dy.to_vector<double>(),
                            vr = a[1].to_vector<double>();
  for (size_t i = 0; i < vy.size(); ++i) EXPECT_EQ(vr[i], vy[i] > 0 ? vg[i] : 0.0) << i;
}

TEST(BatchNormAct, ThreadCountInvariant) {
  Inputs in = make_inputs({8, 16, 16, 16}, DType::f32, 70);
  auto run = [&](int threads) {
    set_num_threads(threads);
    Inputs c{in.x.clone(), in.w.clone(), in.b.clone(), in.r.clone()};
    require_grads(c);
    Tensor y = fused(c, Tensor(), Tensor(), true, true, true);
    ops::sum(ops::mul(y, in.r)).backward();
    return std::vector<Tensor>{y, c.x.grad(), c.w.grad(), c.b.grad(), c.r.grad()};
  };
  const std::vector<Tensor> one = run(1), two = run(2);
  set_num_threads(2);
  for (size_t k = 0; k < one.size(); ++k) EXPECT_TRUE(test::bitwise_equal(one[k], two[k])) << k;
}

TEST(BatchNormAct, ModuleFusedPathMatchesPlainPath) {
  BatchNorm2d a(3), b(3);
  Inputs in = make_inputs({2, 3, 4, 4}, DType::f32, 80);
  Tensor ya = ops::relu(ops::add(a.forward(in.x), in.r));
  Tensor yb = b.forward_act(in.x, in.r, true);
  EXPECT_TRUE(test::bitwise_equal(ya, yb));
  EXPECT_TRUE(test::bitwise_equal(a.running_mean(), b.running_mean()));
  EXPECT_EQ(b.num_batches_tracked().to_vector<int64_t>()[0], 1);
  EXPECT_THROW(b.forward_act(in.x, Tensor::zeros({2, 3, 4, 5}), true), ValueError);
}

TEST(BatchNormAct, RejectsBadArguments) {
  Inputs in = make_inputs({2, 3, 4, 4}, DType::f64, 90);
  EXPECT_THROW(ops::batch_norm_act(in.x, in.w, in.b, Tensor(), Tensor(), true, 0.1, 1e-5,
                                   Tensor::zeros({2, 3, 4, 5}, DType::f64), true),
               ValueError);
  EXPECT_THROW(ops::batch_norm_act(in.x, in.w, in.b, Tensor(), Tensor(), true, 0.1, 1e-5,
                                   in.r.to(DType::f32), true),
               ValueError);
}
