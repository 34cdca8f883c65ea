#pragma once
// bfloat16 rounding as scalar bit manipulation, header-only so that the CPU kernel and the CUDA
// kernels (kernels/cuda/bf16.cu) produce the very same bits. No CUDA headers: under nvcc the
// functions become __host__ __device__.
//
// Round to nearest, ties to even, on the f32 bit pattern, exactly as torch's float->bfloat16
// conversion (c10::detail::round_to_nearest_even): add 0x7fff plus the lowest kept bit, drop
// the low 16 bits. Every NaN becomes torch's canonical quiet NaN 0x7fc0; infinities stay;
// values beyond the largest bf16 (0x7f7f, about 3.39e38) round to infinity; denormals round
// like any other value (no flushing: it is integer arithmetic).
#include <cstdint>
#include <cstring>

#include "kernels/host_device.h"

namespace tranq::kernels::bf16 {

// The bf16 bit pattern of the f32 with bits u.
TRANQ_HD inline uint16_t round_bits(uint32_t u) {
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

TRANQ_HD inline uint32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
#endif
}

TRANQ_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
#endif
}

// v rounded to the nearest bf16, as an f32 (exact: every bf16 is an f32).
TRANQ_HD inline float round(float v) {
  return bits_float(static_cast<uint32_t>(round_bits(float_bits(v))) << 16);
}

}  // namespace tranq::kernels::bf16
