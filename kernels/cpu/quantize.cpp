// Reference CPU fake quantisation. Every loop runs over the fixed pieces of quant_piece()
// (a scale's elements cut into kQuantChunk blocks), so the per-scale multiplier is a loop
// constant (no per-element division or channel lookup) and the dscale reduction has the same
// order whatever the thread count. The inner loops are branch-free and vectorise.
#include "kernels/quantize.h"

#include <cmath>
#include <vector>

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;
constexpr int kLanes = 8;  // interleaved double accumulators of the dscale reduction

// Per-scale constants, computed once per call. A zero or non-finite scale would turn every
// t into inf/NaN; it is a caller's mistake, reported before any loop starts.
template <class T>
struct ScaleConsts {
  std::vector<T> mult, inv;  // g/|s| and 1/|s|
};

template <class T>
ScaleConsts<T> scale_consts(const char* op, const Tensor& scale, const QuantRange& r) {
  const T* ps = scale.data<T>();
  const int64_t c = scale.numel();
  ScaleConsts<T> k;
  k.mult.resize(static_cast<size_t>(c));
  k.inv.resize(static_cast<size_t>(c));
  for (int64_t i = 0; i < c; ++i) {
    TRANQ_CHECK(quant_scale_usable(ps[i], r),
                "{}: scale[{}] = {} must be finite and nonzero, and large enough that {} / |scale| "
                "is finite (initialise the scale first)",
                op, i, static_cast<double>(ps[i]), r.g);
    k.mult[i] = quant_multiplier(ps[i], r);
    k.inv[i] = quant_inv_scale(ps[i]);
  }
  return k;
}

template <class T, class C, bool kBinary, bool kCodes>
void forward_loop(const T* x, T* y, C* codes, int64_t b, int64_t e, T m, T lo, T hi, T inv_g) {
  for (int64_t i = b; i < e; ++i) {
    const T t = x[i] * m;
    const T c = kBinary ? quant_level_binary(t) : quant_level_multibit(t, lo, hi);
    y[i] = c * inv_g;
    if constexpr (kCodes) codes[i] = static_cast<C>(static_cast<int32_t>(c));
  }
}

template <class T, class C, bool kBinary, bool kCodes>
void forward_impl(const Tensor& x, const Tensor& scale, const QuantRange& r, const Tensor& y,
                  const Tensor& codes) {
  const ScaleConsts<T> k = scale_consts<T>("fake_quantize_forward", scale, r);
  const T* px = x.data<T>();
  T* py = y.data<T>();
  C* pc = kCodes ? codes.data<C>() : nullptr;
  const int64_t n = x.numel(), inner = n / scale.numel();
  const int64_t pieces = scale.numel() * quant_pieces_per_channel(inner, kQuantChunk);
  const T lo = static_cast<T>(r.lo), hi = static_cast<T>(r.hi);
  const T inv_g = T(1) / static_cast<T>(r.g);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t j = 0; j < pieces; ++j) {
    int64_t c, b, e;
    quant_piece(j, inner, kQuantChunk, &c, &b, &e);
    forward_loop<T, C, kBinary, kCodes>(px, py, pc, b, e, k.mult[c], lo, hi, inv_g);
  }
}

// Returns the piece's sum of dy*x over inside elements (kDs), in kLanes interleaved lanes
// added in lane order. dy and x are read before dx is written, so dx may alias dy.
template <class T, bool kDx, bool kDs>
double backward_loop(const T* x, const T* dy, T* dx, int64_t b, int64_t e, T m, T inv, T lo, T hi) {
  double lane[kLanes] = {};
  int64_t i = b;
  for (; i + kLanes <= e; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const T xv = x[i + l], g = dy[i + l];
      const T t = xv * m;
      const bool in = lo <= t && t <= hi;
      if constexpr (kDs) lane[l] += in ? static_cast<double>(g) * static_cast<double>(xv) : 0.0;
      if constexpr (kDx) dx[i + l] = in ? g * inv : T(0);
    }
  }
  for (int l = 0; i < e; ++i, ++l) {
    const T xv = x[i], g = dy[i];
    const T t = xv * m;
    const bool in = lo <= t && t <= hi;
    if constexpr (kDs) lane[l] += in ? static_cast<double>(g) * static_cast<double>(xv) : 0.0;
    if constexpr (kDx) dx[i] = in ? g * inv : T(0);
  }
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += lane[l];
  return s;
}

template <class T, bool kDx, bool kDs>
void backward_impl(const Tensor& x, const Tensor& scale, const QuantRange& r, const Tensor& dy,
                   const Tensor& dx, const Tensor& dscale, double factor) {
  const ScaleConsts<T> k = scale_consts<T>("fake_quantize_backward", scale, r);
  const T* px = x.data<T>();
  const T* pg = dy.data<T>();
  T* pdx = kDx ? dx.data<T>() : nullptr;
  const int64_t n = x.numel(), channels = scale.numel(), inner = n / channels;
  const int64_t per = quant_pieces_per_channel(inner, kQuantChunk);
  const int64_t pieces = channels * per;
  const T lo = static_cast<T>(r.lo), hi = static_cast<T>(r.hi);
  std::vector<double> partial(kDs ? static_cast<size_t>(pieces) : 0);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t j = 0; j < pieces; ++j) {
    int64_t c, b, e;
    quant_piece(j, inner, kQuantChunk, &c, &b, &e);
    const double s = backward_loop<T, kDx, kDs>(px, pg, pdx, b, e, k.mult[c], k.inv[c], lo, hi);
    if constexpr (kDs) partial[j] = s;
  }
  if constexpr (kDs) {
    const T* ps = scale.data<T>();
    T* pds = dscale.data<T>();
    for (int64_t c = 0; c < channels; ++c) {
      double acc = 0;
      for (int64_t q = 0; q < per; ++q) acc += partial[c * per + q];
      const double s = static_cast<double>(ps[c]);
      const double a = std::fabs(s);
      // d value / d|s| = -x/|s|^2 inside; d|s|/ds = sign(s).
      pds[c] = static_cast<T>(acc * factor * ((s < 0 ? 1.0 : -1.0) / (a * a)));
    }
  }
}

template <class T, bool kDx>
void backward_select_ds(bool ds, const Tensor& x, const Tensor& scale, const QuantRange& r,
                        const Tensor& dy, const Tensor& dx, const Tensor& dscale, double f) {
  if (ds) {
    backward_impl<T, kDx, true>(x, scale, r, dy, dx, dscale, f);
  } else {
    backward_impl<T, kDx, false>(x, scale, r, dy, dx, dscale, f);
  }
}

template <class C, class T>
void dequantize_impl(const Tensor& codes, const QuantRange& r, const Tensor& y) {
  const C* pc = codes.data<C>();
  T* py = y.data<T>();
  const int64_t n = codes.numel();
  const int32_t lo = r.lo, hi = r.hi;
  const bool binary = r.binary_sign;
  const T inv_g = T(1) / static_cast<T>(r.g);
  int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = pc[i];
    bad += (c < lo || c > hi || (binary && c == 0)) ? 1 : 0;
    py[i] = static_cast<T>(c) * inv_g;
  }
  TRANQ_CHECK(bad == 0,
              "dequantize_codes: {} of {} codes lie outside [{}, {}]{}; were they produced "
              "with this QuantRange?",
              bad, n, lo, hi, binary ? " or are 0 (binary codes are -1, +1)" : "");
}

}  // namespace

void fake_quantize_forward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                           const Tensor& y, const Tensor& codes) {
  const char* op = "fake_quantize_forward";
  check_quantize_args(op, x, scale, r);
  check_defined(y, op, "y");
  check_same_shape(x, y, op);
  TRANQ_CHECK(y.dtype() == x.dtype() && y.is_contiguous(), "{}: y must be contiguous {}, got {}",
              op, dtype_name(x.dtype()), tensor_str(y));
  if (codes.defined()) check_codes_buffer(op, "codes", codes, x.numel(), r, true);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto ctag) {
      using C = decltype(ctag);
      if (r.binary_sign) {
        if (codes.defined()) {
          forward_impl<T, C, true, true>(x, scale, r, y, codes);
        } else {
          forward_impl<T, C, true, false>(x, scale, r, y, codes);
        }
      } else if (codes.defined()) {
        forward_impl<T, C, false, true>(x, scale, r, y, codes);
      } else {
        forward_impl<T, C, false, false>(x, scale, r, y, codes);
      }
    };
    if (codes.defined() && codes.dtype() == DType::u8) {
      run(uint8_t{});
    } else {
      run(int8_t{});
    }
  });
}

void fake_quantize_backward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                            const Tensor& dy, const Tensor& dx, const Tensor& dscale,
                            double grad_scale_factor) {
  const char* op = "fake_quantize_backward";
  check_quantize_backward_args(op, x, scale, r, dy, dx, dscale, grad_scale_factor);
  if (!dx.defined() && !dscale.defined()) return;
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (dx.defined()) {
      backward_select_ds<T, true>(dscale.defined(), x, scale, r, dy, dx, dscale, grad_scale_factor);
    } else {
      backward_select_ds<T, false>(dscale.defined(), x, scale, r, dy, dx, dscale,
                                   grad_scale_factor);
    }
  });
}

void dequantize_codes(const Tensor& codes, const QuantRange& r, const Tensor& y) {
  const char* op = "dequantize_codes";
  check_quant_range(op, r);
  check_defined(codes, op, "codes");
  check_defined(y, op, "y");
  check_codes_buffer(op, "codes", codes, codes.numel(), r, true);
  TRANQ_CHECK(is_floating(y.dtype()) && y.is_contiguous() && y.numel() == codes.numel(),
              "{}: y must be a contiguous f32/f64 tensor with {} elements, got {}", op,
              codes.numel(), tensor_str(y));
  TRANQ_CHECK(y.device() == codes.device(), "{}: y {} is not on the codes' device", op,
              tensor_str(y));
  dispatch_floating(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (codes.dtype() == DType::u8) {
      dequantize_impl<uint8_t, T>(codes, r, y);
    } else {
      dequantize_impl<int8_t, T>(codes, r, y);
    }
  });
}

}  // namespace tranq::kernels::cpu
