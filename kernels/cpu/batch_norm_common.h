#pragma once
// Internal to the CPU batch-norm kernels (plain and fused): the [N, C, inner] view of x,
// argument checks and the per-channel sums. Sums run in double with kLanes independent
// accumulators (the loop vectorises) in a fixed order, so results never depend on the thread
// count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/tensor.h"

namespace tranq::kernels::cpu::bn {

constexpr int kLanes = 8;
constexpr int64_t kParallelMin = 1 << 14;

// x viewed as [N, C, inner]: channel c is N runs of `inner` contiguous values.
struct Layout {
  int64_t n, c, inner;
  int64_t count() const { return n * inner; }  // values per channel
};

inline Layout layout_of(const Tensor& x, const char* op) {
  TRANQ_CHECK(x.dim() >= 2, "{}: expected x [N,C,...], got {}", op, tensor_str(x));
  TRANQ_CHECK(x.is_contiguous(), "{}: x must be contiguous, got a strided {}", op, tensor_str(x));
  Layout l{x.size(0), x.size(1), 1};
  for (int64_t d = 2; d < x.dim(); ++d) l.inner *= x.size(d);
  return l;
}

inline void check_channel_vector(const Tensor& t, const Tensor& x, int64_t c, const char* op,
                          const char* arg) {
  if (!t.defined()) return;
  TRANQ_CHECK(t.dim() == 1 && t.size(0) == c && t.is_contiguous(),
              "{}: {} must be a contiguous [{}] tensor, got {}", op, arg, c, tensor_str(t));
  TRANQ_CHECK(t.dtype() == x.dtype() && t.device() == x.device(),
              "{}: {} is {} but x is {}; convert it to x's dtype and device", op, arg,
              tensor_str(t), tensor_str(x));
}

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
void channel_stats(const T* xc, const Layout& l, bool use_batch_stats, double momentum,
                   double eps, T* running_mean, T* running_var, double& mean, double& invstd) {
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

inline Layout check_forward_args(const char* op, const Tensor& x, const Tensor& weight,
                                 const Tensor& bias, const Tensor& running_mean,
                                 const Tensor& running_var, bool use_batch_stats, double eps,
                                 const Tensor& y, const Tensor& save_mean,
                                 const Tensor& save_invstd) {
  const Layout l = layout_of(x, op);
  check_same_shape(x, y, op);
  TRANQ_CHECK(y.dtype() == x.dtype() && y.is_contiguous(), "{}: y must be a contiguous {}, got {}",
              op, dtype_name(x.dtype()), tensor_str(y));
  check_channel_vector(weight, x, l.c, op, "weight");
  check_channel_vector(bias, x, l.c, op, "bias");
  check_channel_vector(running_mean, x, l.c, op, "running_mean");
  check_channel_vector(running_var, x, l.c, op, "running_var");
  check_defined(save_mean, op, "save_mean");
  check_defined(save_invstd, op, "save_invstd");
  check_channel_vector(save_mean, x, l.c, op, "save_mean");
  check_channel_vector(save_invstd, x, l.c, op, "save_invstd");
  TRANQ_CHECK(running_mean.defined() == running_var.defined(),
              "{}: running_mean and running_var must both be given or both be omitted", op);
  TRANQ_CHECK(eps > 0, "{}: eps must be positive, got {}", op, eps);
  if (use_batch_stats) {
    TRANQ_CHECK(l.count() > 1,
                "{}: batch statistics need more than one value per channel, got x {}; use a "
                "larger batch or eval mode",
                op, tensor_str(x));
  } else {
    TRANQ_CHECK(running_mean.defined(), "{}: eval mode needs running_mean and running_var", op);
  }
  return l;
}

inline Layout check_backward_args(const char* op, const Tensor& x, const Tensor& dy,
                                  const Tensor& weight, const Tensor& save_mean,
                                  const Tensor& save_invstd, const Tensor& dx,
                                  const Tensor& dweight, const Tensor& dbias) {
  const Layout l = layout_of(x, op);
  check_same_shape(x, dy, op);
  TRANQ_CHECK(dy.dtype() == x.dtype() && dy.is_contiguous(),
              "{}: dy must be a contiguous {}, got {}", op, dtype_name(x.dtype()), tensor_str(dy));
  if (dx.defined()) {
    check_same_shape(x, dx, op);
    TRANQ_CHECK(dx.dtype() == x.dtype() && dx.is_contiguous(),
                "{}: dx must be a contiguous {}, got {}", op, dtype_name(x.dtype()),
                tensor_str(dx));
  }
  check_channel_vector(weight, x, l.c, op, "weight");
  check_defined(save_mean, op, "save_mean");
  check_defined(save_invstd, op, "save_invstd");
  check_channel_vector(save_mean, x, l.c, op, "save_mean");
  check_channel_vector(save_invstd, x, l.c, op, "save_invstd");
  check_channel_vector(dweight, x, l.c, op, "dweight");
  check_channel_vector(dbias, x, l.c, op, "dbias");
  return l;
}

}  // namespace tranq::kernels::cpu::bn
