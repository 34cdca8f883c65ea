#pragma once
// The quantizer's scalar math (docs/qat.md), header-only so that the CPU reference and
// the CUDA kernels evaluate the very same expressions and agree bit for bit. No Eigen, no
// CUDA headers: under nvcc the functions become __host__ __device__.
//
// Definitions, for x in T (float or double) and a scale s:
//   m     = T(g) / |s|                     (quant_multiplier; one division per scale)
//   t     = x * m                          (quant_t; the position in units of quantizer steps)
//   code  = binary_sign ? (t >= 0 ? +1 : -1)
//                       : round_half_even(clamp(t, lo, hi))   (NaN t -> lo)
//   value = code * (1/g)                   (exact: g is a power of two)
//   inside = lo <= t <= hi                 (binary weights: lo = -1, hi = 1, so -1 <= t <= 1)
//   dx    = inside ? dy * (T(1) / |s|) : 0
//   ds    = sign(s) * sum_inside(-dy * x) / |s|^2   (see kernels/quantize.h for the reduction)
// Transition points: t = k + 0.5, k in [lo, hi-1] (binary weights: t = 0).
#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"

namespace tranq::kernels {

struct QuantRange {
  int32_t lo = 0, hi = 0;
  float g = 1.0f;            // levels per unit of x/|s|; a power of two
  bool binary_sign = false;  // binary weights: sign(t) with codes {-1, +1}
};

// Weights, bits 2..8: [-2^(b-1), 2^(b-1)-1], g = 2^(b-1); bits 1: sign, codes {-1,+1}, g = 1.
// Activations, bits 1..8: [0, 2^b-1], g = 2^b. Other bit widths throw ValueError.
QuantRange weight_range(int bits);
QuantRange activation_range(int bits);

namespace qmath {

template <class T>
TRANQ_HD inline T abs_(T v) {
  return v < T(0) ? -v : v;
}

// Round half to even under the default rounding mode (torch.round's rule).
TRANQ_HD inline float round_half_even(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  return std::nearbyint(v);
#endif
}
TRANQ_HD inline double round_half_even(double v) {
#if defined(__CUDA_ARCH__)
  return rint(v);
#else
  return std::nearbyint(v);
#endif
}

}  // namespace qmath

// m = g / |s|; t = x * m. Callers precompute m once per scale.
template <class T>
TRANQ_HD inline T quant_multiplier(T s, const QuantRange& r) {
  return static_cast<T>(r.g) / qmath::abs_(s);
}
// 1 / |s|, the STE slope dy/dx inside the clip range.
template <class T>
TRANQ_HD inline T quant_inv_scale(T s) {
  return T(1) / qmath::abs_(s);
}

// A scale the quantizer can use: finite, nonzero, and not so small that g/|s| or 1/|s| overflows
// (below about g/FLT_MAX in f32: t = 0 * inf would be NaN, every code wrong and every gradient
// zero). s - s is exactly +0 for a finite s and NaN otherwise, on the host and the device alike.
template <class T>
TRANQ_HD inline bool quant_scale_usable(T s, const QuantRange& r) {
  if (!((s - s) == T(0)) || s == T(0)) return false;
  const T m = quant_multiplier(s, r), inv = quant_inv_scale(s);
  return (m - m) == T(0) && (inv - inv) == T(0);
}

// The code as a T holding an exact integer. The clamp is written so that NaN maps to lo
// (comparisons with NaN are false), which keeps the later int conversion defined. Adding +0
// turns the -0 that rounding gives for t in (-0.5, 0] into +0, so value(x) equals the
// dequantised code bit for bit.
template <class T>
TRANQ_HD inline T quant_level_multibit(T t, T lo, T hi) {
  T c = t > lo ? t : lo;
  c = c < hi ? c : hi;
  return qmath::round_half_even(c) + T(0);
}
template <class T>
TRANQ_HD inline T quant_level_binary(T t) {
  return t >= T(0) ? T(1) : T(-1);
}
template <class T>
TRANQ_HD inline T quant_level(T t, const QuantRange& r) {
  return r.binary_sign ? quant_level_binary(t)
                       : quant_level_multibit(t, static_cast<T>(r.lo), static_cast<T>(r.hi));
}

template <class T>
TRANQ_HD inline int32_t quant_code(T t, const QuantRange& r) {
  return static_cast<int32_t>(quant_level(t, r));
}

// value = code / g, computed as code * (1/g), exact because g is a power of two.
template <class T>
TRANQ_HD inline T quant_value_of_code(int32_t code, const QuantRange& r) {
  return static_cast<T>(code) * (T(1) / static_cast<T>(r.g));
}

// Inside the clip range, where the STE passes gradient. Binary weights have lo=-1, hi=1.
template <class T>
TRANQ_HD inline bool quant_inside(T t, const QuantRange& r) {
  return static_cast<T>(r.lo) <= t && t <= static_cast<T>(r.hi);
}

// Distance (in steps) from t to the nearest transition point k + 0.5, k in [lo, hi-1]:
// round the clamped t - 0.5 (hi1 = hi - 1).
template <class T>
TRANQ_HD inline T quant_transition_distance_multibit(T t, T lo, T hi1) {
  const T u = t - T(0.5);
  T k = u > lo ? u : lo;
  k = k < hi1 ? k : hi1;
  return qmath::abs_(u - qmath::round_half_even(k));
}
// Binary weights: the only transition point is t = 0.
template <class T>
TRANQ_HD inline T quant_transition_distance_binary(T t) {
  return qmath::abs_(t);
}
template <class T>
TRANQ_HD inline T quant_transition_distance(T t, const QuantRange& r) {
  return r.binary_sign ? quant_transition_distance_binary(t)
                       : quant_transition_distance_multibit(t, static_cast<T>(r.lo),
                                                            static_cast<T>(r.hi - 1));
}

// Within near_fraction of a step from a transition point (the design note's "near"; NaN is
// never near).
template <class T>
TRANQ_HD inline bool quant_near(T t, const QuantRange& r, T near_fraction) {
  return quant_transition_distance(t, r) < near_fraction;
}

// The fixed work split shared by the backends (and what makes reductions independent of the
// thread count): scale c owns elements [c*inner, (c+1)*inner), cut into pieces of at most
// `chunk` elements counted from the start of the channel. Piece j of
// channels * pieces_per_channel(inner, chunk) covers [*begin, *end) of channel *channel.
TRANQ_HD inline int64_t quant_pieces_per_channel(int64_t inner, int64_t chunk) {
  return (inner + chunk - 1) / chunk;
}
TRANQ_HD inline void quant_piece(int64_t j, int64_t inner, int64_t chunk, int64_t* channel,
                                 int64_t* begin, int64_t* end) {
  const int64_t per = quant_pieces_per_channel(inner, chunk);
  const int64_t c = j / per, k = j - c * per;
  const int64_t b = c * inner + k * chunk;
  const int64_t e = b + chunk < (c + 1) * inner ? b + chunk : (c + 1) * inner;
  *channel = c;
  *begin = b;
  *end = e;
}

}  // namespace tranq::kernels
