// Reference CPU batch norm. Work is split over channels: each channel's sums are computed by
// one thread in a fixed order (in double, with kLanes independent accumulators so the loop
// vectorises), so results do not depend on the thread count at all. The forward reads x
// twice (sums, then the normalised write); the backward reads x and dy twice.
#include "kernels/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
namespace {

constexpr int kLanes = 8;
constexpr int64_t kParallelMin = 1 << 14;

// x viewed as [N, C, inner]: channel c is N runs of `inner` contiguous values.
struct Layout {
  int64_t n, c, inner;
  int64_t count() const { return n * inner; }  // values per channel
};

Layout layout_of(const Tensor& x, const char* op) {
  TRANQ_CHECK(x.dim() >= 2, "{}: expected x [N,C,...], got {}", op, tensor_str(x));
  TRANQ_CHECK(x.is_contiguous(), "{}: x must be contiguous, got a strided {}", op, tensor_str(x));
  Layout l{x.size(0), x.size(1), 1};
  for (int64_t d = 2; d < x.dim(); ++d) l.inner *= x.size(d);
  return l;
}

void check_channel_vector(const Tensor& t, const Tensor& x, int64_t c, const char* op,
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

double lane_total(const double* lanes) {
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  return s;
}

// s1 = sum(x - shift), s2 = sum((x - shift)^2) over one channel. The shift (one of the
// channel's own values) keeps the one-pass variance free of cancellation when |mean| >> std.
template <class T>
void channel_moments(const T* x, const Layout& l, double shift, double& s1, double& s2) {
  double a[kLanes] = {}, b[kLanes] = {};
  const int64_t stride = l.c * l.inner;
  for (int64_t o = 0; o < l.n; ++o) {
    const T* p = x + o * stride;
    int64_t i = 0;
    for (; i + kLanes <= l.inner; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        const double d = static_cast<double>(p[i + k]) - shift;
        a[k] += d;
        b[k] += d * d;
      }
    }
    for (; i < l.inner; ++i) {
      const double d = static_cast<double>(p[i]) - shift;
      a[0] += d;
      b[0] += d * d;
    }
  }
  s1 = lane_total(a);
  s2 = lane_total(b);
}

// sdy = sum(dy), sdyx = sum(dy * (x - mean)) over one channel.
template <class T>
void channel_grad_sums(const T* x, const T* dy, const Layout& l, double mean, double& sdy,
                       double& sdyx) {
  double a[kLanes] = {}, b[kLanes] = {};
  const int64_t stride = l.c * l.inner;
  for (int64_t o = 0; o < l.n; ++o) {
    const T* px = x + o * stride;
    const T* pg = dy + o * stride;
    int64_t i = 0;
    for (; i + kLanes <= l.inner; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        const double g = static_cast<double>(pg[i + k]);
        a[k] += g;
        b[k] += g * (static_cast<double>(px[i + k]) - mean);
      }
    }
    for (; i < l.inner; ++i) {
      const double g = static_cast<double>(pg[i]);
      a[0] += g;
      b[0] += g * (static_cast<double>(px[i]) - mean);
    }
  }
  sdy = lane_total(a);
  sdyx = lane_total(b);
}

}  // namespace

void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd) {
  const char* op = "batch_norm_forward";
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
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T* pw = ptr_or_null<T>(weight);
    const T* pb = ptr_or_null<T>(bias);
    T* prm = running_mean.defined() ? running_mean.data<T>() : nullptr;
    T* prv = running_var.defined() ? running_var.data<T>() : nullptr;
    T* psm = save_mean.data<T>();
    T* psi = save_invstd.data<T>();
    const double count = static_cast<double>(l.count());
    const int64_t stride = l.c * l.inner;
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
    for (int64_t c = 0; c < l.c; ++c) {
      const T* xc = px + c * l.inner;
      double mean, invstd;
      if (use_batch_stats) {
        const double shift = static_cast<double>(xc[0]);
        double s1, s2;
        channel_moments(xc, l, shift, s1, s2);
        const double dmean = s1 / count;
        const double var = std::max(0.0, s2 / count - dmean * dmean);  // biased
        mean = shift + dmean;
        invstd = 1.0 / std::sqrt(var + eps);
        if (prm) {
          prm[c] = static_cast<T>((1 - momentum) * prm[c] + momentum * mean);
          prv[c] = static_cast<T>((1 - momentum) * prv[c] + momentum * var * count / (count - 1));
        }
      } else {
        mean = static_cast<double>(prm[c]);
        invstd = 1.0 / std::sqrt(static_cast<double>(prv[c]) + eps);
      }
      psm[c] = static_cast<T>(mean);
      psi[c] = static_cast<T>(invstd);
      const T m = static_cast<T>(mean);
      const T scale = static_cast<T>(pw ? pw[c] * invstd : invstd);
      const T b = pb ? pb[c] : T(0);
      for (int64_t o = 0; o < l.n; ++o) {
        const T* pin = xc + o * stride;
        T* pout = py + c * l.inner + o * stride;
        for (int64_t i = 0; i < l.inner; ++i) pout[i] = (pin[i] - m) * scale + b;
      }
    }
  });
}

void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool use_batch_stats,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  const char* op = "batch_norm_backward";
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
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = dy.data<T>();
    T* pdx = dx.defined() ? dx.data<T>() : nullptr;
    const T* pw = ptr_or_null<T>(weight);
    const T* psm = save_mean.data<T>();
    const T* psi = save_invstd.data<T>();
    T* pdw = dweight.defined() ? dweight.data<T>() : nullptr;
    T* pdb = dbias.defined() ? dbias.data<T>() : nullptr;
    const bool need_sums = pdw || pdb || (pdx && use_batch_stats);
    const double count = static_cast<double>(l.count());
    const int64_t stride = l.c * l.inner;
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
    for (int64_t c = 0; c < l.c; ++c) {
      const double mean = static_cast<double>(psm[c]);
      const double invstd = static_cast<double>(psi[c]);
      double sdy = 0, sdyx = 0;
      if (need_sums) channel_grad_sums(px + c * l.inner, pg + c * l.inner, l, mean, sdy, sdyx);
      if (pdw) pdw[c] = static_cast<T>(sdyx * invstd);
      if (pdb) pdb[c] = static_cast<T>(sdy);
      if (!pdx) continue;
      // dx = k*dy + b*(x - mean) + k0, with k = weight*invstd. With batch statistics the mean
      // and variance depend on x, which adds the b and k0 terms.
      const double k = pw ? static_cast<double>(pw[c]) * invstd : invstd;
      const double b = use_batch_stats ? -k * invstd * invstd * sdyx / count : 0.0;
      const double k0 = use_batch_stats ? -k * sdy / count : 0.0;
      const T tk = static_cast<T>(k), tb = static_cast<T>(b), tk0 = static_cast<T>(k0);
      const T m = static_cast<T>(mean);
      for (int64_t o = 0; o < l.n; ++o) {
        const int64_t base = c * l.inner + o * stride;
        const T* xi = px + base;
        const T* gi = pg + base;
        T* di = pdx + base;
        for (int64_t i = 0; i < l.inner; ++i) di[i] = tk * gi[i] + tb * (xi[i] - m) + tk0;
      }
    }
  });
}

}  // namespace tranq::kernels::cpu
