#pragma once
// Helpers of the CUDA backend tests: the skip-with-reason guard every CUDA test starts with,
// quantizer inputs that hit ties and special values, and host-side comparisons.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda_runtime.h"
#include "kernels/quant_math.h"

// Skips the test (loudly, with the runtime's reason) where no CUDA device is usable, and
// registers the CUDA backend otherwise.
#define TRANQ_REQUIRE_CUDA()                            \
  do {                                                  \
    std::string tranq_why_;                             \
    if (::tranq::cuda::device_count(&tranq_why_) == 0)  \
      GTEST_SKIP() << "no CUDA device: " << tranq_why_; \
    ::tranq::cuda::init();                              \
  } while (0)

// Skips (with the reason) in a build without cuDNN, which every CUDA convolution needs.
#define TRANQ_SKIP_WITHOUT_CUDNN()                                                       \
  do {                                                                                   \
    if (!::tranq::cuda::has_cudnn())                                                     \
      GTEST_SKIP() << "no cuDNN in this CUDA build: configure with CUDNN_ROOT=<prefix> " \
                      "to run CUDA convolutions";                                        \
  } while (0)

// TRANQ_REQUIRE_CUDA for tests that run convolutions on the device.
#define TRANQ_REQUIRE_CUDNN()   \
  do {                          \
    TRANQ_REQUIRE_CUDA();       \
    TRANQ_SKIP_WITHOUT_CUDNN(); \
  } while (0)

// For tests that count the caching allocator's hits or host waits: those counts mean something
// else with the cache off (TRANQ_CUDA_NO_CACHING, set for memory-checker runs).
#define TRANQ_REQUIRE_CACHING_ALLOCATOR()                                           \
  do {                                                                              \
    const char* tranq_nc_ = std::getenv("TRANQ_CUDA_NO_CACHING");                   \
    if (tranq_nc_ != nullptr && std::strcmp(tranq_nc_, "") != 0 &&                  \
        std::strcmp(tranq_nc_, "0") != 0)                                           \
      GTEST_SKIP() << "TRANQ_CUDA_NO_CACHING is set: this test counts the caching " \
                      "allocator's reuse and host waits";                           \
  } while (0)

namespace tranq::test {

inline Tensor to_cuda(const Tensor& t) {
  return t.to(Device::cuda());
}
inline Tensor to_host(const Tensor& t) {
  return t.to(Device::cpu());
}

// Same shape, dtype and bytes; either tensor may live on the GPU.
inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  if (a.numel() == 0) return true;
  Tensor ha = to_host(a).contiguous(), hb = to_host(b).contiguous();
  return std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

// Index of the first element whose bytes differ (for messages), or -1.
inline int64_t first_difference(const Tensor& a, const Tensor& b) {
  Tensor ha = to_host(a).contiguous(), hb = to_host(b).contiguous();
  const size_t es = dtype_size(ha.dtype());
  const auto* pa = static_cast<const unsigned char*>(ha.raw_data());
  const auto* pb = static_cast<const unsigned char*>(hb.raw_data());
  for (int64_t i = 0; i < ha.numel(); ++i)
    if (std::memcmp(pa + i * es, pb + i * es, es) != 0) return i;
  return -1;
}

// Scales: per tensor ([1]) or per channel ([channels]); powers of two (so x * g/|s| is exact and
// the tie inputs below are exact ties) mixed with arbitrary values, some negative (|s| is used).
inline std::vector<double> make_scales(int64_t count, uint64_t seed) {
  Rng rng(seed, 1);
  std::vector<double> s(static_cast<size_t>(count));
  for (int64_t c = 0; c < count; ++c) {
    const double pow2 = std::ldexp(1.0, -static_cast<int>(rng.below(6)));
    s[c] = (c % 3 == 1) ? rng.uniform(0.05, 2.0) : pow2;
    if (c % 4 == 3) s[c] = -s[c];
  }
  return s;
}

// Quantizer inputs for scale s (one per channel of `inner` elements): positions t in units of
// steps spread over [lo - 2, hi + 2], every 5th an exact tie k + 0.5, every 7th an exact
// integer; with `specials`, also 0, -0, NaN and +-inf at fixed spots.
inline std::vector<double> make_quant_input(int64_t n, const std::vector<double>& scales,
                                            const kernels::QuantRange& r, uint64_t seed,
                                            bool specials) {
  Rng rng(seed, 2);
  const int64_t inner = n / static_cast<int64_t>(scales.size());
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double s = std::fabs(scales[static_cast<size_t>(i / inner)]);
    double t = rng.uniform(r.lo - 2.0, r.hi + 2.0);
    if (i % 5 == 0) t = std::floor(t) + 0.5;
    if (i % 7 == 0) t = std::floor(t);
    x[i] = t * s / r.g;
  }
  if (specials && n >= 64) {
    const double inf = std::numeric_limits<double>::infinity();
    x[3] = 0.0;
    x[11] = -0.0;
    x[17] = std::numeric_limits<double>::quiet_NaN();
    x[29] = inf;
    x[41] = -inf;
  }
  return x;
}

inline Tensor tensor_of(const std::vector<double>& v, const Shape& shape, DType dtype) {
  return Tensor::from_vector(v, shape).to(dtype);
}

inline std::vector<double> normal_values(int64_t n, uint64_t seed, double sd = 1.0) {
  Rng rng(seed, 3);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = sd * rng.normal();
  return v;
}

// Elementwise |a - b| <= rel * max(1, |b|) (b the reference), with the first failure reported.
inline void expect_close(const Tensor& a, const Tensor& b, double rel, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<double> va = to_host(a).to(DType::f64).to_vector<double>();
  const std::vector<double> vb = to_host(b).to(DType::f64).to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) {
    const double tol = rel * std::max(1.0, std::fabs(vb[i]));
    if (!(std::fabs(va[i] - vb[i]) <= tol)) {
      ADD_FAILURE() << what << ": element " << i << " is " << va[i] << ", reference " << vb[i]
                    << " (tolerance " << tol << ")";
      return;
    }
  }
}

}  // namespace tranq::test
