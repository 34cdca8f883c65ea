#pragma once
// Internal to the CPU batch-norm kernels (plain and fused): the per-channel statistics and
// sums (argument checks: kernels/batch_norm.h). Sums run in double with kLanes independent
// accumulators (the loop vectorises) in a fixed order, so results never depend on the thread
// count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/tensor.h"
#include "kernels/batch_norm.h"

namespace tranq::kernels::cpu::bn {

constexpr int kLanes = 8;
constexpr int64_t kParallelMin = 1 << 14;

using Layout = BnLayout;

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// kLanes doubles as one vector (GCC vector extension): lane k accumulates elements i + k of
// each block of kLanes, whatever the instruction set, so sums are the same on every machine.
typedef double Lanes __attribute__((vector_size(kLanes * sizeof(double))));

template <class T>
inline Lanes load_lanes(const T* p) {
  if constexpr (sizeof(T) == sizeof(float)) {
    typedef float F __attribute__((vector_size(kLanes * sizeof(float))));
    F f;
    std::memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, Lanes);
  } else {
    Lanes d;
    std::memcpy(&d, p, sizeof d);
    return d;
  }
}

inline double lane_total(const Lanes& v) {
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += v[l];
  return s;
}

// Adds one run of n values: a += x - shift, b += (x - shift)^2.
template <class T>
inline void add_moments(const T* x, int64_t n, double shift, Lanes& a, Lanes& b) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Lanes d = load_lanes(x + i) - shift;
    a += d;
    b += d * d;
  }
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - shift;
    a[0] += d;
    b[0] += d * d;
  }
}

// Adds one run of n values: a += g, b += g * (x - mean).
template <class T>
inline void add_grad_sums(const T* x, const T* g, int64_t n, double mean, Lanes& a, Lanes& b) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Lanes gv = load_lanes(g + i);
    a += gv;
    b += gv * (load_lanes(x + i) - mean);
  }
  for (; i < n; ++i) {
    const double gv = static_cast<double>(g[i]);
    a[0] += gv;
    b[0] += gv * (static_cast<double>(x[i]) - mean);
  }
}

// s1 = sum(x - shift), s2 = sum((x - shift)^2) over one channel. The shift (one of the
// channel's own values) keeps the one-pass variance free of cancellation when |mean| >> std.
template <class T>
void channel_moments(const T* x, const Layout& l, double shift, double& s1, double& s2) {
  Lanes a = {}, b = {};
  const int64_t stride = l.c * l.inner;
  for (int64_t o = 0; o < l.n; ++o) add_moments(x + o * stride, l.inner, shift, a, b);
  s1 = lane_total(a);
  s2 = lane_total(b);
}

// sdy = sum(dy), sdyx = sum(dy * (x - mean)) over one channel.
template <class T>
void channel_grad_sums(const T* x, const T* dy, const Layout& l, double mean, double& sdy,
                       double& sdyx) {
  Lanes a = {}, b = {};
  const int64_t stride = l.c * l.inner;
  for (int64_t o = 0; o < l.n; ++o)
    add_grad_sums(x + o * stride, dy + o * stride, l.inner, mean, a, b);
  sdy = lane_total(a);
  sdyx = lane_total(b);
}

// The statistics one channel is normalised with: batch mean and 1/sqrt(var + eps) (updating the
// running statistics when given), or the running statistics in eval mode.
template <class T>
void channel_stats(const T* xc, const Layout& l, bool use_batch_stats, double momentum, double eps,
                   T* running_mean, T* running_var, double& mean, double& invstd) {
  if (use_batch_stats) {
    const double count = static_cast<double>(l.count());
    const double shift = static_cast<double>(xc[0]);
    double s1, s2;
    channel_moments(xc, l, shift, s1, s2);
    const double dmean = s1 / count;
    const double var = std::max(0.0, s2 / count - dmean * dmean);  // biased
    mean = shift + dmean;
    invstd = 1.0 / std::sqrt(var + eps);
    if (running_mean) {
      *running_mean = static_cast<T>((1 - momentum) * *running_mean + momentum * mean);
      *running_var =
          static_cast<T>((1 - momentum) * *running_var + momentum * var * count / (count - 1));
    }
  } else {
    mean = static_cast<double>(*running_mean);
    invstd = 1.0 / std::sqrt(static_cast<double>(*running_var) + eps);
  }
}

}  // namespace tranq::kernels::cpu::bn
