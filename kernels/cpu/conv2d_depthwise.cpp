// Depthwise convolution (one input channel per group, any channel multiplier) as direct loops:
// with a single input channel per group an im2col GEMM would have a depth of only KH*KW.
// Each parallel task owns whole output planes (forward, weight gradient) or whole input planes
// (data gradient), so no two threads write the same element and every sum runs in a fixed
// order that does not depend on the thread count.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/dispatch.h"

namespace tranq::kernels::cpu::detail {
namespace {

constexpr int64_t kParallelMin = 1 << 14;

// y_plane (+)= conv of one input plane with one KHxKW filter.
template <class T>
void plane_forward(const Conv2dGeometry& g, const T* x, const T* w, T* y) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    T* yr = y + oh * g.OW;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T wv = w[kh * g.KW + kw];
        const T* xr = x + ih * g.W + kw * g.dw - g.pw;
        const int64_t lo = g.ow_lo(kw), hi = g.ow_hi(kw);
        if (g.sw == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * g.sw];
        }
      }
    }
  }
}

// dx_plane += the adjoint of plane_forward applied to dy_plane.
template <class T>
void plane_backward_data(const Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* gr = dy + oh * g.OW;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T wv = w[kh * g.KW + kw];
        T* xr = dx + ih * g.W + kw * g.dw - g.pw;
        const int64_t lo = g.ow_lo(kw), hi = g.ow_hi(kw);
        if (g.sw == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) xr[ow] += wv * gr[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) xr[ow * g.sw] += wv * gr[ow];
        }
      }
    }
  }
}

// dw_filter[kh, kw] += sum over positions of dy_plane * the input sample under tap (kh, kw).
template <class T>
void plane_backward_weight(const Conv2dGeometry& g, const T* x, const T* dy, double* dw) {
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t lo = g.ow_lo(kw), hi = g.ow_hi(kw);
      T lanes[8] = {};
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        const T* gr = dy + oh * g.OW;
        const T* xr = x + ih * g.W + kw * g.dw - g.pw;
        // Eight lanes give the compiler an order-preserving vectorisation.
        int64_t ow = lo;
        if (g.sw == 1) {
          for (; ow + 8 <= hi; ow += 8) {
            for (int l = 0; l < 8; ++l) lanes[l] += gr[ow + l] * xr[ow + l];
          }
        }
        for (; ow < hi; ++ow) lanes[0] += gr[ow] * xr[ow * g.sw];
      }
      double s = 0;
      for (int l = 0; l < 8; ++l) s += lanes[l];
      dw[kh * g.KW + kw] += s;
    }
  }
}

}  // namespace

void depthwise_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                       const Tensor& bias, const Tensor& y) {
  dispatch_floating(x.dtype(), "conv2d_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pw = w.data<T>();
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
    const int64_t planes = g.N * g.O;
#pragma omp parallel for schedule(static) if (planes * g.P * g.KH * g.KW > kParallelMin)
    for (int64_t i = 0; i < planes; ++i) {
      const int64_t o = i % g.O, n = i / g.O, c = o / g.Og;
      T* yp = py + i * g.P;
      std::fill(yp, yp + g.P, pb ? pb[o] : T(0));
      plane_forward(g, px + (n * g.C + c) * g.H * g.W, pw + o * g.KH * g.KW, yp);
    }
  });
}

void depthwise_backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                             const Tensor& dx) {
  dispatch_floating(dx.dtype(), "conv2d_backward_data", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = dy.data<T>();
    const T* pw = w.data<T>();
    T* pdx = dx.data<T>();
    const int64_t planes = g.N * g.C, hw = g.H * g.W;
#pragma omp parallel for schedule(static) if (planes * g.P * g.KH * g.KW > kParallelMin)
    for (int64_t i = 0; i < planes; ++i) {
      const int64_t c = i % g.C, n = i / g.C;
      T* xp = pdx + i * hw;
      std::fill(xp, xp + hw, T(0));
      // Output channels c*Og .. c*Og+Og-1 read input channel c.
      for (int64_t j = 0; j < g.Og; ++j) {
        const int64_t o = c * g.Og + j;
        plane_backward_data(g, pg + (n * g.O + o) * g.P, pw + o * g.KH * g.KW, xp);
      }
    }
  });
}

void depthwise_backward_weight(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                               const Tensor& dw) {
  dispatch_floating(x.dtype(), "conv2d_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = dy.data<T>();
    T* pdw = dw.data<T>();
    const int64_t taps = g.KH * g.KW;
#pragma omp parallel for schedule(static) if (g.N * g.O * g.P * taps > kParallelMin)
    for (int64_t o = 0; o < g.O; ++o) {
      const int64_t c = o / g.Og;
      double acc[64];
      std::vector<double> big;
      double* a = acc;
      if (taps > 64) {
        big.assign(static_cast<size_t>(taps), 0.0);
        a = big.data();
      } else {
        std::fill(acc, acc + taps, 0.0);
      }
      for (int64_t n = 0; n < g.N; ++n) {
        plane_backward_weight(g, px + (n * g.C + c) * g.H * g.W, pg + (n * g.O + o) * g.P, a);
      }
      for (int64_t t = 0; t < taps; ++t) pdw[o * taps + t] = static_cast<T>(a[t]);
    }
  });
}

}  // namespace tranq::kernels::cpu::detail
