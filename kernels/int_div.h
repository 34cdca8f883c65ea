#pragma once
// Division by a run-time constant as a multiply-high, an add and a shift (Granlund and
// Montgomery's method, in the form of PyTorch's IntDivider): the index arithmetic of the
// per-channel CUDA kernels (channel of a flat NCHW index) without a 64-bit integer division
// per element, which costs tens of instructions on a GPU. Exact for every dividend n < 2^31
// and divisor d in [1, 2^31]; the host computes the constants, host and device divide alike.
#include <cstdint>

#if defined(__CUDACC__)
#define TRANQ_HOST_DEVICE __host__ __device__
#else
#define TRANQ_HOST_DEVICE
#endif

namespace tranq::kernels {

class IntDiv {
 public:
  IntDiv() = default;
  // d in [1, 2^31] (checked by the callers, which fall back to 64-bit arithmetic beyond).
  explicit IntDiv(uint32_t d) : divisor_(d) {
    while (shift_ < 32 && (uint64_t{1} << shift_) < d) ++shift_;
    // magic = 2^32 * (2^shift - d) / d + 1 < 2^32: with t = floor(n * magic / 2^32),
    // floor(n / d) = (t + n) >> shift for n < 2^31 (t <= n, so t + n does not wrap).
    magic_ = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift_) - d)) / d + 1);
  }

  TRANQ_HOST_DEVICE uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t t = __umulhi(n, magic_);
#else
    const uint32_t t = static_cast<uint32_t>((static_cast<uint64_t>(n) * magic_) >> 32);
#endif
    return (t + n) >> shift_;
  }
  TRANQ_HOST_DEVICE uint32_t mod(uint32_t n) const { return n - div(n) * divisor_; }
  TRANQ_HOST_DEVICE uint32_t divisor() const { return divisor_; }

 private:
  uint32_t divisor_ = 1, magic_ = 1, shift_ = 0;
};

}  // namespace tranq::kernels
