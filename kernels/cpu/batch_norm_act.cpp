// CPU batch norm + residual + ReLU. Per channel, as kernels/cpu/batch_norm.cpp: the statistics
// pass reads x, the write pass reads x (and the residual) and writes y. The backward's sums
// pass reads x, dy and y and stores dz (into dresidual when asked, so the write pass reads it
// instead of dy and y).
#include "kernels/batch_norm_act.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/batch_norm_common.h"
#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
using namespace bn;
namespace {

// One run of y = act((x - m) * scale + b [+ r]), rounded exactly as batch_norm, add, relu.
template <class T, bool Relu>
void write_run(const T* x, const T* r, T* y, int64_t n, T m, T scale, T b) {
  if (r) {
    for (int64_t i = 0; i < n; ++i) {
      const T z = T((x[i] - m) * scale + b) + r[i];
      y[i] = Relu ? (z <= T(0) ? T(0) : z) : z;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T z = (x[i] - m) * scale + b;
      y[i] = Relu ? (z <= T(0) ? T(0) : z) : z;
    }
  }
}

// dz = dy masked by y > 0, as a plain loop so that it vectorises.
template <class T>
void relu_mask(const T* y, const T* dy, T* dz, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dz[i] = y[i] > T(0) ? dy[i] : T(0);
}

// sdy = sum(dz), sdyx = sum(dz * (x - mean)) over channel c. dz is stored to dres when given,
// else (with ReLU) to the caller's scratch of l.inner values.
template <class T>
void act_grad_sums(const T* x, const T* y, const T* dy, T* dres, T* scratch, bool relu,
                   const Layout& l, int64_t c, double mean, double& sdy, double& sdyx) {
  Lanes a = {}, b = {};
  const int64_t stride = l.c * l.inner;
  for (int64_t o = 0; o < l.n; ++o) {
    const int64_t base = c * l.inner + o * stride;
    const T* dz = dy + base;
    if (relu) {
      T* out = dres ? dres + base : scratch;
      relu_mask(y + base, dy + base, out, l.inner);
      dz = out;
    } else if (dres) {
      std::copy(dy + base, dy + base + l.inner, dres + base);
    }
    add_grad_sums(x + base, dz, l.inner, mean, a, b);
  }
  sdy = lane_total(a);
  sdyx = lane_total(b);
}

}  // namespace

void batch_norm_act_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var,
                            bool use_batch_stats, double momentum, double eps,
                            const Tensor& residual, bool relu, const Tensor& y,
                            const Tensor& save_mean, const Tensor& save_invstd) {
  const char* op = "batch_norm_act_forward";
  const Layout l = check_batch_norm_forward_args(op, x, weight, bias, running_mean, running_var,
                                                 use_batch_stats, eps, y, save_mean, save_invstd);
  check_like_input(residual, x, op, "residual");
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pr = residual.defined() ? residual.data<T>() : nullptr;
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
      double mean, invstd;
      channel_stats(px + c * l.inner, l, use_batch_stats, momentum, eps, prm ? prm + c : nullptr,
                    prv ? prv + c : nullptr, mean, invstd);
      psm[c] = static_cast<T>(mean);
      psi[c] = static_cast<T>(invstd);
      const T m = static_cast<T>(mean);
      const T scale = static_cast<T>(pw ? pw[c] * invstd : invstd);
      const T b = pb ? pb[c] : T(0);
      for (int64_t o = 0; o < l.n; ++o) {
        const int64_t base = c * l.inner + o * stride;
        const T* ri = pr ? pr + base : nullptr;
        if (relu) {
          write_run<T, true>(px + base, ri, py + base, l.inner, m, scale, b);
        } else {
          write_run<T, false>(px + base, ri, py + base, l.inner, m, scale, b);
        }
      }
    }
  });
}

void batch_norm_act_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& weight, const Tensor& save_mean,
                             const Tensor& save_invstd, bool use_batch_stats, bool relu,
                             const Tensor& dx, const Tensor& dresidual, const Tensor& dweight,
                             const Tensor& dbias) {
  const char* op = "batch_norm_act_backward";
  const Layout l =
      check_batch_norm_backward_args(op, x, dy, weight, save_mean, save_invstd, dx, dweight, dbias);
  check_like_input(y, x, op, "y");
  check_like_input(dresidual, x, op, "dresidual");
  TRANQ_CHECK(!relu || y.defined(), "{}: the ReLU mask needs the forward output y", op);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* py = y.defined() ? y.data<T>() : nullptr;
    const T* pg = dy.data<T>();
    T* pdx = dx.defined() ? dx.data<T>() : nullptr;
    T* pdr = dresidual.defined() ? dresidual.data<T>() : nullptr;
    const T* pw = ptr_or_null<T>(weight);
    const T* psm = save_mean.data<T>();
    const T* psi = save_invstd.data<T>();
    T* pdw = dweight.defined() ? dweight.data<T>() : nullptr;
    T* pdb = dbias.defined() ? dbias.data<T>() : nullptr;
    const double count = static_cast<double>(l.count());
    const int64_t stride = l.c * l.inner;
    // Without dresidual, the ReLU-masked gradient of a run goes to a per-thread scratch.
    std::vector<T> scratch;
#pragma omp parallel for schedule(static) firstprivate(scratch) if (x.numel() > kParallelMin)
    for (int64_t c = 0; c < l.c; ++c) {
      if (relu && !pdr && scratch.empty()) scratch.resize(static_cast<size_t>(l.inner));
      const double mean = static_cast<double>(psm[c]);
      const double invstd = static_cast<double>(psi[c]);
      const T m = static_cast<T>(mean);
      double sdy, sdyx;
      act_grad_sums(px, py, pg, pdr, scratch.data(), relu, l, c, mean, sdy, sdyx);
      if (pdw) pdw[c] = static_cast<T>(sdyx * invstd);
      if (pdb) pdb[c] = static_cast<T>(sdy);
      if (!pdx) continue;
      const double k = pw ? static_cast<double>(pw[c]) * invstd : invstd;
      const double b = use_batch_stats ? -k * invstd * invstd * sdyx / count : 0.0;
      const double k0 = use_batch_stats ? -k * sdy / count : 0.0;
      const T tk = static_cast<T>(k), tb = static_cast<T>(b), tk0 = static_cast<T>(k0);
      for (int64_t o = 0; o < l.n; ++o) {
        const int64_t base = c * l.inner + o * stride;
        const T* xi = px + base;
        T* di = pdx + base;
        if (pdr) {
          const T* ri = pdr + base;
          for (int64_t i = 0; i < l.inner; ++i) di[i] = tk * ri[i] + tb * (xi[i] - m) + tk0;
        } else {
          const T* gi = pg + base;
          if (relu) {
            relu_mask(py + base, gi, scratch.data(), l.inner);
            const T* zi = scratch.data();
            for (int64_t i = 0; i < l.inner; ++i) di[i] = tk * zi[i] + tb * (xi[i] - m) + tk0;
          } else {
            for (int64_t i = 0; i < l.inner; ++i) di[i] = tk * gi[i] + tb * (xi[i] - m) + tk0;
          }
        }
      }
    }
  });
}

}  // namespace tranq::kernels::cpu
