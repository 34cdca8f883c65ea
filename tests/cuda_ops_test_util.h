#pragma once
// Helpers of the CUDA op tests (tests/test_cuda_ops_*.cpp): each test runs an op on the CPU and
// on the GPU on the same random inputs and compares.
//
// Tolerances, as a normalised maximum error max|gpu - cpu| / max|cpu| over a tensor (the CPU
// result is the reference):
//  - kExact: ops whose CUDA version performs the CPU's operations in the CPU's order (pooling,
//    ReLU, add/mul/scale, dropout, the accumulator): compared bit for bit instead.
//  - kTolF32 = 3e-5, kTolF64 = 1e-12: ops whose sums run in another order (GEMM, convolution,
//    batch norm, cross-entropy, sum_all). Summation-order differences are a few units of
//    2^-24 (2^-53) times the number of terms relative to the sum of magnitudes; TF32 (10-bit
//    products) would miss kTolF32 by an order of magnitude, so these also check it is off.
//
// Without a GPU every test skips with the runtime's reason. Building the tests with
// -DTRANQ_CUDA_OPS_TEST_ON_CPU runs them with CPU tensors on both sides instead (a check of the
// tests themselves on a machine without a GPU; everything then trivially matches).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "gradcheck.h"
#include "kernels/elementwise.h"
#include "tranq/config.h"

#if defined(TRANQ_CUDA_OPS_TEST_ON_CPU)
#define TRANQ_REQUIRE_CUDA_OPS() \
  do {                           \
  } while (0)
#elif TRANQ_WITH_CUDA
// Skips without a device; registers the backend and the CUDA ops' hooks (the gradient
// accumulator) otherwise.
#define TRANQ_REQUIRE_CUDA_OPS()                 \
  do {                                           \
    TRANQ_REQUIRE_CUDA();                        \
    ::tranq::kernels::cuda::register_cuda_ops(); \
  } while (0)
#else
#define TRANQ_REQUIRE_CUDA_OPS() TRANQ_REQUIRE_CUDA()
#endif

// TRANQ_REQUIRE_CUDA_OPS for tests that run convolutions: these also skip in a CUDA build
// without cuDNN.
#if defined(TRANQ_CUDA_OPS_TEST_ON_CPU)
#define TRANQ_REQUIRE_CUDA_CONV() TRANQ_REQUIRE_CUDA_OPS()
#else
#define TRANQ_REQUIRE_CUDA_CONV() \
  do {                            \
    TRANQ_REQUIRE_CUDA_OPS();     \
    TRANQ_SKIP_WITHOUT_CUDNN();   \
  } while (0)
#endif

namespace tranq::test {

constexpr double kTolF32 = 3e-5;
constexpr double kTolF64 = 1e-12;
inline double tol_for(DType d) {
  return d == DType::f64 ? kTolF64 : kTolF32;
}

// The device the "GPU side" of a test runs on.
inline Device gpu() {
#if defined(TRANQ_CUDA_OPS_TEST_ON_CPU)
  return Device::cpu();
#else
  return Device::cuda();
#endif
}
inline Tensor on_gpu(const Tensor& t) {
  return t.to(gpu());
}
inline Tensor empty_gpu(const Shape& s, DType d) {
  return Tensor::empty(s, d, gpu());
}

// Uniform values in [lo, hi) of the given dtype, on the CPU.
inline Tensor uniform(const Shape& shape, uint64_t seed, DType dtype, double lo = -1.0,
                      double hi = 1.0) {
  return random_tensor(shape, seed, lo, hi, dtype);
}

// A host tensor of `shape` filled with NaN: an output the op must overwrite entirely.
inline Tensor nan_filled(const Shape& shape, DType dtype, Device dev) {
  return Tensor::full(shape, std::nan(""), dtype, dev);
}

// max|a - b| / max|b| (b the reference), infinity when a NaN appears in one but not the other
// or the shapes differ; 0 for two empty tensors.
inline double normalised_error(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  const std::vector<double> va = to_host(a).to(DType::f64).to_vector<double>();
  const std::vector<double> vb = to_host(b).to(DType::f64).to_vector<double>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(vb[i])) return INFINITY;
    if (std::isnan(vb[i])) continue;
    err = std::max(err, std::fabs(va[i] - vb[i]));
    scale = std::max(scale, std::fabs(vb[i]));
  }
  if (err == 0) return 0;
  return scale > 0 ? err / scale : INFINITY;
}

inline void expect_near_cpu(const Tensor& gpu_result, const Tensor& cpu_result, double tol,
                            const std::string& what) {
  const double e = normalised_error(gpu_result, cpu_result);
  EXPECT_LE(e, tol) << what << ": normalised error " << e << " (tolerance " << tol << ")";
}

inline void expect_equal_bits(const Tensor& gpu_result, const Tensor& cpu_result,
                              const std::string& what) {
  if (gpu_result.shape() != cpu_result.shape() || gpu_result.dtype() != cpu_result.dtype()) {
    ADD_FAILURE() << what << ": got " << tensor_str(gpu_result) << ", expected "
                  << tensor_str(cpu_result);
    return;
  }
  EXPECT_TRUE(same_bits(gpu_result, cpu_result))
      << what << ": differs from the CPU first at element "
      << first_difference(gpu_result, cpu_result);
}

}  // namespace tranq::test
