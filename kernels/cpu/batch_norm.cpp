// Reference CPU batch norm. Work is split over channels: each channel's sums are computed by
// one thread in a fixed order (in double, with kLanes independent accumulators so the loop
// vectorises), so results do not depend on the thread count at all. The forward reads x
// twice (sums, then the normalised write); the backward reads x and dy twice.
#include "kernels/batch_norm.h"

#include "kernels/cpu/batch_norm_common.h"
#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
using namespace bn;

void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd) {
  const char* op = "batch_norm_forward";
  const Layout l = check_batch_norm_forward_args(op, x, weight, bias, running_mean, running_var,
                                                 use_batch_stats, eps, y, save_mean, save_invstd);
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
    const int64_t stride = l.c * l.inner;
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
    for (int64_t c = 0; c < l.c; ++c) {
      const T* xc = px + c * l.inner;
      double mean, invstd;
      channel_stats(xc, l, use_batch_stats, momentum, eps, prm ? prm + c : nullptr,
                    prv ? prv + c : nullptr, mean, invstd);
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
  const Layout l =
      check_batch_norm_backward_args(op, x, dy, weight, save_mean, save_invstd, dx, dweight, dbias);
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
