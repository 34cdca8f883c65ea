// CUDA elementwise ops, sum_all, sum_squares, the CUDA gradient accumulator, dropout and GEMM
// against the CPU on the same random inputs (tolerances in cuda_ops_test_util.h): add, mul, scale,
// the ReLUs, dropout masks and outputs bit for bit; axpby within 4 ulp of T (normalised); sum_all
// within its summation-order bound and the same bits on every run; GEMM within kTolF32 / kTolF64
// for every transpose combination, odd shapes and an empty inner dimension. Skipped, with the
// reason, without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/rng.h"
#include "cuda_ops_test_util.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "layers/functional.h"

using namespace tranq;
using test::empty_gpu;
using test::expect_equal_bits;
using test::expect_near_cpu;
using test::on_gpu;
using test::uniform;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};
const int64_t kSizes[] = {0, 1, 7, 4097, 70001};

std::string label(const char* op, DType dt, int64_t n) {
  return std::string(op) + " " + dtype_name(dt) + " n=" + std::to_string(n);
}

double eps_of(DType dt) {
  return dt == DType::f64 ? std::numeric_limits<double>::epsilon()
                          : std::numeric_limits<float>::epsilon();
}

// Values in [-8, 8) with exact zeros and exact 6s among them (the ReLU kinks and the cap).
Tensor relu_input(int64_t n, uint64_t seed, DType dt) {
  std::vector<double> v = uniform({n}, seed, DType::f64, -8.0, 8.0).to_vector<double>();
  for (int64_t i = 0; i < n; i += 5) v[static_cast<size_t>(i)] = 0.0;
  for (int64_t i = 2; i < n; i += 7) v[static_cast<size_t>(i)] = 6.0;
  return Tensor::from_vector(v, {n}).to(dt);
}

}  // namespace

TEST(CudaOpsElementwise, MapsEqualCpuBitForBit) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 1;
  for (DType dt : kDtypes) {
    for (int64_t n : kSizes) {
      const Tensor a = uniform({n}, ++seed, dt, -3, 3), b = uniform({n}, ++seed, dt, -3, 3);
      const Tensor ga = on_gpu(a), gb = on_gpu(b);
      Tensor c = Tensor::empty({n}, dt), g = empty_gpu({n}, dt);

      kernels::add(a, b, c);
      kernels::add(ga, gb, g);
      expect_equal_bits(g, c, label("add", dt, n));
      kernels::mul(a, b, c);
      kernels::mul(ga, gb, g);
      expect_equal_bits(g, c, label("mul", dt, n));
      kernels::scale(a, -1.7, c);
      kernels::scale(ga, -1.7, g);
      expect_equal_bits(g, c, label("scale", dt, n));

      // axpby: the CPU build may fuse one multiply-add; the device rounds each operation.
      kernels::axpby(0.3, a, -2.5, b, c);
      kernels::axpby(0.3, ga, -2.5, gb, g);
      expect_near_cpu(g, c, 4 * eps_of(dt), label("axpby", dt, n));

      // In place: out aliases the first input.
      Tensor ci = a.clone(), gi = ga.clone();
      kernels::add(ci, b, ci);
      kernels::add(gi, gb, gi);
      expect_equal_bits(gi, ci, label("add in place", dt, n));

      const Tensor x = relu_input(n, ++seed, dt), gx = on_gpu(x);
      for (double cap : {0.0, 6.0}) {
        const std::string what = label("relu", dt, n) + " cap=" + std::to_string(cap);
        kernels::relu_forward(x, c, cap);
        kernels::relu_forward(gx, g, cap);
        expect_equal_bits(g, c, what + " forward");
        kernels::relu_backward(x, b, c, cap);
        kernels::relu_backward(gx, gb, g, cap);
        expect_equal_bits(g, c, what + " backward");
      }
    }
  }
}

TEST(CudaOpsElementwise, SumAllWithinOrderBoundAndDeterministic) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 100;
  for (DType dt : kDtypes) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{4095}, int64_t{4096}, int64_t{4097},
                      int64_t{(1 << 20) + 3}}) {
      // An offset makes the sum large against the values' spread (cancellation-free).
      const Tensor x = uniform({n}, ++seed, dt, 2.0, 4.0);
      Tensor c = Tensor::empty({}, dt), g1 = empty_gpu({}, dt), g2 = empty_gpu({}, dt);
      kernels::sum_all(x, c);
      const Tensor gx = on_gpu(x);
      kernels::sum_all(gx, g1);
      kernels::sum_all(gx, g2);
      const std::string what = label("sum_all", dt, n);
      expect_equal_bits(g1, g2, what + " (two runs)");
      // Both sum in double: n * 2^-52 * sum|x|, plus the final rounding of each to T.
      double abs_sum = 0;
      for (double v : x.to(DType::f64).to_vector<double>()) abs_sum += std::fabs(v);
      const double cpu = c.item(), dev = g1.item();
      const double bound = n * 0x1.0p-52 * abs_sum + 2 * eps_of(dt) * std::fabs(cpu);
      EXPECT_LE(std::fabs(dev - cpu), bound) << what << ": " << dev << " vs " << cpu;
    }
  }
}

TEST(CudaOpsElementwise, SumSquaresWithinOrderBoundAndDeterministic) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 300;
  for (DType dt : kDtypes) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{4097}, int64_t{(1 << 20) + 3}}) {
      const Tensor x = uniform({n}, ++seed, dt, -3.0, 3.0);
      Tensor c = Tensor::empty({}, DType::f64), g1 = empty_gpu({}, DType::f64),
             g2 = empty_gpu({}, DType::f64);
      kernels::sum_squares(x, c);
      const Tensor gx = on_gpu(x);
      kernels::sum_squares(gx, g1);
      kernels::sum_squares(gx, g2);
      const std::string what = label("sum_squares", dt, n);
      expect_equal_bits(g1, g2, what + " (two runs)");
      // Squares and sums in double on both: the order bound of sum_all on non-negative terms.
      const double cpu = c.item(), dev = g1.item();
      EXPECT_LE(std::fabs(dev - cpu), (n + 1) * 0x1.0p-52 * cpu)
          << what << ": " << dev << " vs " << cpu;
    }
  }
}

TEST(CudaOpsElementwise, GradientAccumulationMatchesCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  for (DType dt : kDtypes) {
    const Tensor x0 = uniform({3, 41}, 7, dt);
    auto grad_of = [&](Device dev) {
      Tensor x = x0.to(dev).clone();
      x.set_requires_grad(true);
      // x is used three times: the engine sums its gradients (g*x + g*x + g); the second
      // backward accumulates into the leaf's gradient.
      for (int rep = 0; rep < 2; ++rep) ops::sum(ops::add(ops::mul(x, x), x)).backward();
      return x.grad();
    };
    const Tensor cpu = grad_of(Device::cpu()), dev = grad_of(test::gpu());
    ASSERT_TRUE(dev.defined());
    EXPECT_TRUE(dev.device() == test::gpu());
    expect_equal_bits(dev, cpu, std::string("accumulated gradient ") + dtype_name(dt));
  }
}

TEST(CudaOpsElementwise, DropoutMaskAndOutputEqualCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 5;
  for (int64_t n : {int64_t{1}, int64_t{16385}, int64_t{100003}}) {
    for (double p : {0.0, 0.1, 0.5, 1.0}) {
      const std::string what = "dropout n=" + std::to_string(n) + " p=" + std::to_string(p);
      Rng host_rng(++seed, 3), dev_rng(seed, 3);
      host_rng.next_u64();  // start mid-stream
      dev_rng.next_u64();
      Tensor mask = Tensor::empty({n}, DType::u8), gmask = empty_gpu({n}, DType::u8);
      kernels::fill_dropout_mask(mask, p, host_rng);
      kernels::fill_dropout_mask(gmask, p, dev_rng);
      expect_equal_bits(gmask, mask, what + " mask");
      EXPECT_EQ(dev_rng.key(), host_rng.key()) << what;
      EXPECT_EQ(dev_rng.counter(), host_rng.counter()) << what;
      EXPECT_EQ(dev_rng.counter(), 1u + static_cast<uint64_t>(n)) << what;

      for (DType dt : kDtypes) {
        const Tensor x = uniform({n}, ++seed, dt);
        const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
        Tensor y = Tensor::empty({n}, dt), gy = empty_gpu({n}, dt);
        kernels::dropout_apply(x, mask, scale, y);
        kernels::dropout_apply(on_gpu(x), gmask, scale, gy);
        expect_equal_bits(gy, y, what + " apply " + dtype_name(dt));
        Tensor inplace = on_gpu(x);
        kernels::dropout_apply(inplace, gmask, scale, inplace);
        expect_equal_bits(inplace, y, what + " apply in place");
      }
    }
  }
  // The layer-level op on a GPU tensor: the same mask, the same output.
  const Tensor x = uniform({4, 33}, 77, DType::f32);
  Rng r1(9), r2(9);
  const Tensor y = ops::dropout(x, 0.3, true, r1), gy = ops::dropout(on_gpu(x), 0.3, true, r2);
  expect_equal_bits(gy, y, "ops::dropout");
}

TEST(CudaOpsGemm, AllTransposesMatchCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  struct Mnk {
    int64_t m, n, k;
  };
  const Mnk shapes[] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {128, 96, 200}, {3, 4, 0}, {1, 300, 2}};
  uint64_t seed = 200;
  for (DType dt : kDtypes) {
    for (const Mnk& s : shapes) {
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        const Tensor a = uniform(ta ? Shape{s.k, s.m} : Shape{s.m, s.k}, ++seed, dt);
        const Tensor b = uniform(tb ? Shape{s.n, s.k} : Shape{s.k, s.n}, ++seed, dt);
        const Tensor c0 = uniform({s.m, s.n}, ++seed, dt);
        for (double beta : {0.0, 0.7}) {
          const std::string what = std::string("gemm ") + dtype_name(dt) +
                                   " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                                   " k=" + std::to_string(s.k) + " ta=" + std::to_string(ta) +
                                   " tb=" + std::to_string(tb) + " beta=" + std::to_string(beta);
          // With beta = 0 the old contents must be ignored: start from NaNs there.
          Tensor c = beta == 0 ? test::nan_filled({s.m, s.n}, dt, Device::cpu()) : c0.clone();
          Tensor gc = beta == 0 ? test::nan_filled({s.m, s.n}, dt, test::gpu()) : on_gpu(c0);
          kernels::gemm(ta, tb, 1.3, a, b, beta, c);
          kernels::gemm(ta, tb, 1.3, on_gpu(a), on_gpu(b), beta, gc);
          expect_near_cpu(gc, c, test::tol_for(dt), what);
        }
      }
    }
  }
}

TEST(CudaOpsGemm, ZeroAlphaDoesNotReadTheOperandsAsTheCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  for (DType dt : kDtypes) {
    const Tensor a = test::nan_filled({4, 3}, dt, test::gpu());
    const Tensor b = test::nan_filled({3, 5}, dt, test::gpu());
    const Tensor c0 = uniform({4, 5}, 31, dt);
    for (double beta : {0.0, 1.0, -2.0}) {
      Tensor c = c0.clone();
      Tensor gc = on_gpu(c0);
      kernels::gemm(false, false, 0.0, a.to(Device::cpu()), b.to(Device::cpu()), beta, c);
      kernels::gemm(false, false, 0.0, a, b, beta, gc);
      expect_equal_bits(
          gc, c, std::string("gemm alpha=0 beta=") + std::to_string(beta) + " " + dtype_name(dt));
    }
  }
}

TEST(CudaOpsGemm, LinearForwardAndBackwardMatchCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  for (DType dt : kDtypes) {
    const Tensor x0 = uniform({9, 31}, 1, dt), w0 = uniform({13, 31}, 2, dt),
                 b0 = uniform({13}, 3, dt);
    auto run = [&](Device dev, std::vector<Tensor>* grads) {
      Tensor x = x0.to(dev).clone(), w = w0.to(dev).clone(), b = b0.to(dev).clone();
      for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
      Tensor y = ops::linear(x, w, b);
      ops::sum(ops::mul(y, y)).backward();
      *grads = {x.grad(), w.grad(), b.grad()};
      return y;
    };
    std::vector<Tensor> gc, gg;
    const Tensor yc = run(Device::cpu(), &gc), yg = run(test::gpu(), &gg);
    const std::string what = std::string("linear ") + dtype_name(dt);
    expect_near_cpu(yg, yc, test::tol_for(dt), what + " y");
    for (size_t i = 0; i < gc.size(); ++i)
      expect_near_cpu(gg[i], gc[i], test::tol_for(dt), what + " grad " + std::to_string(i));
  }
}

TEST(CudaOpsElementwise, MixedDevicesAreRefused) {
  TRANQ_REQUIRE_CUDA_OPS();
#if !defined(TRANQ_CUDA_OPS_TEST_ON_CPU)
  const Tensor a = uniform({8}, 1, DType::f32);
  const Tensor ga = on_gpu(a);
  Tensor out = empty_gpu({8}, DType::f32);
  EXPECT_THROW(kernels::add(ga, a, out), ValueError);
  EXPECT_THROW(kernels::add(a, ga, out), ValueError);
  EXPECT_THROW(kernels::gemm(false, false, 1.0, a.view({2, 4}), ga.view({4, 2}), 0.0,
                             empty_gpu({2, 2}, DType::f32)),
               ValueError);
  Rng rng(1);
  const uint64_t before = rng.counter();
  EXPECT_THROW(kernels::fill_dropout_mask(empty_gpu({8}, DType::f32), 0.5, rng), ValueError);
  EXPECT_EQ(rng.counter(), before);
#endif
}
