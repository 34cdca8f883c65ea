#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "gradcheck.h"
#include "kernels/gemm.h"
#include "layers/functional.h"

using namespace tranq;

namespace {

// c = alpha * op(a) op(b) + beta * c by the definition, in double.
std::vector<double> naive_gemm(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b,
                               double beta, const std::vector<double>& c) {
  const auto av = a.to(DType::f64).to_vector<double>(), bv = b.to(DType::f64).to_vector<double>();
  const int64_t m = ta ? a.size(1) : a.size(0), k = ta ? a.size(0) : a.size(1);
  const int64_t n = tb ? b.size(0) : b.size(1);
  std::vector<double> out(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t l = 0; l < k; ++l) {
        const double x = ta ? av[l * m + i] : av[i * k + l];
        const double y = tb ? bv[j * k + l] : bv[l * n + j];
        s += x * y;
      }
      out[i * n + j] = alpha * s + (beta == 0 ? 0.0 : beta * c[i * n + j]);
    }
  return out;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * std::max(1.0, std::fabs(want[i]))) << "element " << i;
}

}  // namespace

TEST(Gemm, AllTransposesAlphaBetaMatchNaive) {
  // Small (single-threaded) and large (split over threads) products, both dtypes.
  struct Size {
    int64_t m, n, k;
  };
  for (Size s : {Size{3, 5, 4}, Size{70, 90, 65}, Size{200, 33, 150}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      for (int combo = 0; combo < 4; ++combo) {
        const bool ta = combo & 1, tb = combo & 2;
        SCOPED_TRACE(testing::Message() << s.m << "x" << s.n << "x" << s.k << " ta=" << ta
                                        << " tb=" << tb << " " << dtype_name(dt));
        Tensor a = test::random_tensor(ta ? Shape{s.k, s.m} : Shape{s.m, s.k}, 1, -1, 1, dt);
        Tensor b = test::random_tensor(tb ? Shape{s.n, s.k} : Shape{s.k, s.n}, 2, -1, 1, dt);
        Tensor c = test::random_tensor({s.m, s.n}, 3, -1, 1, dt);
        const auto c0 = c.to(DType::f64).to_vector<double>();
        kernels::gemm(ta, tb, 0.5, a, b, -2.0, c);
        const double tol = dt == DType::f32 ? 1e-4 : 1e-12;
        expect_close(c.to(DType::f64).to_vector<double>(), naive_gemm(ta, tb, 0.5, a, b, -2.0, c0),
                     tol);
        // beta == 0 ignores c entirely, NaNs included (BLAS semantics).
        c.fill_(std::numeric_limits<double>::quiet_NaN());
        kernels::gemm(ta, tb, 1.0, a, b, 0.0, c);
        expect_close(c.to(DType::f64).to_vector<double>(), naive_gemm(ta, tb, 1.0, a, b, 0.0, c0),
                     tol);
      }
    }
  }
}

TEST(Gemm, ZeroAlphaDoesNotReadTheOperands) {
  // BLAS semantics: with alpha == 0 (or k == 0), c = beta * c and a, b are not read, so a NaN
  // in them does not reach c (0 * NaN would be NaN). Both precisions, beta 0, 1 and other.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = Tensor::zeros({4, 3}), b = Tensor::zeros({3, 5});
  a.fill_(nan);
  b.fill_(nan);
  for (ComputePrecision p : {ComputePrecision::fp32, ComputePrecision::bf16}) {
    Tensor c = test::random_tensor({4, 5}, 7, -1, 1, DType::f32);
    const auto c0 = c.to_vector<float>();
    kernels::gemm(false, false, 0.0, a, b, 1.0, c, p);
    EXPECT_EQ(c.to_vector<float>(), c0);
    kernels::gemm(false, false, 0.0, a, b, -2.0, c, p);
    for (size_t i = 0; i < c0.size(); ++i) EXPECT_EQ(c.to_vector<float>()[i], -2.0f * c0[i]);
    c.fill_(nan);
    kernels::gemm(false, false, 0.0, a, b, 0.0, c, p);
    EXPECT_EQ(c.to_vector<float>(), std::vector<float>(20, 0.0f));
  }
  // An empty inner dimension: the product is zero, c = beta * c.
  Tensor c = Tensor::from_vector<double>({1, 2}, {1, 2});
  kernels::gemm(false, false, 1.0, Tensor::zeros({1, 0}, DType::f64),
                Tensor::zeros({0, 2}, DType::f64), 3.0, c);
  EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{3, 6}));
}

TEST(Gemm, BadArgumentsThrowValueError) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 4}), c = Tensor::zeros({2, 4});
  EXPECT_NO_THROW(kernels::gemm(false, false, 1, a, b, 0, c));
  EXPECT_THROW(kernels::gemm(true, false, 1, a, b, 0, c), ValueError);  // inner dims
  EXPECT_THROW(kernels::gemm(false, false, 1, a, b, 0, Tensor::zeros({2, 5})), ValueError);
  EXPECT_THROW(kernels::gemm(false, false, 1, a, b.to(DType::f64), 0, c), ValueError);
  EXPECT_THROW(kernels::gemm(false, false, 1, a, Tensor::zeros({3, 4, 1}), 0, c), ValueError);
  EXPECT_THROW(kernels::gemm(false, false, 1, a, b, 0, a.transpose(0, 1)), ValueError);
  Tensor sq = Tensor::zeros({3, 3});
  EXPECT_THROW(kernels::gemm(false, false, 1, sq, sq, 0, sq), ValueError);  // aliasing
}

TEST(Linear, MatmulForwardAndPinnedGradients) {
  Tensor a = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector<double>({1, 0, 0, 1, 1, 1}, {3, 2});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor y = ops::matmul(a, b);
  // [1 2 3; 4 5 6] @ [1 0; 0 1; 1 1] = [4 5; 10 11]
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{4, 5, 10, 11}));
  ops::sum(y).backward();
  // d(sum)/da[i][k] = sum_j b[k][j] (row sums of b); d/db[k][j] = sum_i a[i][k].
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1, 1, 2, 1, 1, 2}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{5, 5, 7, 7, 9, 9}));
  EXPECT_THROW(ops::matmul(a, a), ValueError);
  EXPECT_THROW(ops::matmul(a, Tensor::zeros({3, 2})), ValueError);  // f64 @ f32
}

TEST(Linear, PinnedExampleWithBias) {
  // x [1,2], W [[1,0],[0,1],[1,1]] ([out, in]), b [0.5,-1,0] -> [1.5, 1, 3].
  Tensor x = Tensor::from_vector<float>({1, 2}, {1, 2});
  Tensor w = Tensor::from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor b = Tensor::from_vector<float>({0.5f, -1, 0}, {3});
  for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
  Tensor y = ops::linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{1, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1.5f, 1, 3}));
  ops::sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 2}));  // column sums of W
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{1, 2, 1, 2, 1, 2}));
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

TEST(Linear, MatchesNaiveWithAndWithoutBias) {
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor x = test::random_tensor({37, 20}, 1, -1, 1, dt);
    Tensor w = test::random_tensor({11, 20}, 2, -1, 1, dt);
    Tensor b = test::random_tensor({11}, 3, -1, 1, dt);
    std::vector<double> want = naive_gemm(false, true, 1.0, x, w, 0.0, {});
    const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
    expect_close(ops::linear(x, w).to(DType::f64).to_vector<double>(), want, tol);
    const auto bv = b.to(DType::f64).to_vector<double>();
    for (size_t i = 0; i < want.size(); ++i) want[i] += bv[i % 11];
    expect_close(ops::linear(x, w, b).to(DType::f64).to_vector<double>(), want, tol);
  }
  EXPECT_THROW(ops::linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 2})), ValueError);
  EXPECT_THROW(ops::linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3})),
               ValueError);
  EXPECT_THROW(
      ops::linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({4}, DType::f64)),
      ValueError);
  EXPECT_THROW(ops::linear(Tensor::zeros({3}), Tensor::zeros({4, 3})), ValueError);
}

TEST(Linear, GradientsMatchFiniteDifferences) {
  Tensor a = test::random_tensor({4, 5}, 1), b = test::random_tensor({5, 3}, 2);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  test::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); }, {a, b});
  for (bool with_bias : {true, false}) {
    Tensor x = test::random_tensor({6, 4}, 3), w = test::random_tensor({3, 4}, 4);
    std::vector<Tensor> inputs = with_bias ? std::vector<Tensor>{x, w, test::random_tensor({3}, 5)}
                                           : std::vector<Tensor>{x, w};
    for (Tensor& t : inputs) t.set_requires_grad(true);
    test::expect_gradients_match(
        [](const std::vector<Tensor>& in) {
          return ops::linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
        },
        inputs);
  }
}

TEST(Linear, BitwiseReproducible) {
  Tensor a = test::random_tensor({300, 200}, 1, -1, 1, DType::f32);
  Tensor b = test::random_tensor({200, 120}, 2, -1, 1, DType::f32);
  Tensor c1 = ops::matmul(a, b), c2 = ops::matmul(a, b);
  EXPECT_EQ(std::memcmp(c1.raw_data(), c2.raw_data(), c1.nbytes()), 0);
}
