// CPU convolution as GEMM over the register-blocked micro-kernels of kernels/cpu/gemm.cpp;
// depthwise convolutions use direct loops (kernels/cpu/conv2d_depthwise.cpp).
//
// No im2col matrix. The GEMM reads row (c, kh, kw) of the virtual im2col matrix as a shifted
// view of a small per-image source: the zero-padded image split into stride phases (see
// Phases; for stride 1 just the padded image, where the row starts at c*Hp*Wp + kh*dh*Wp +
// kw*dw). Output rows that are whole (or half) vectors are written straight into y, the GEMM
// skipping the source columns between them; other widths compute those columns too and drop
// them. The data gradient of a stride-1 convolution is itself a stride-1 convolution (of dy
// with the flipped, transposed kernel); otherwise it is a GEMM into columns followed by
// col2im. The weight gradient (kernels/cpu/conv2d_backward_weight.cpp) reads the padded image
// directly, at any stride.
//
// Parallelism. OpenMP threads take (image, group) units, handed out dynamically; a unit owns
// its outputs, so which thread runs it does not change any result. When there are fewer units
// than threads (small batches) the threads cooperate inside each unit instead, splitting GEMM
// columns or weight rows statically. The weight gradient sums over the batch in chunks of
// images, each into its own buffer, and adds the buffers in chunk order. Every result
// therefore depends only on the shapes and the thread count (bitwise reproducible).
#include "kernels/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv2d_common.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

namespace tranq::kernels::cpu {

namespace {

using namespace conv;
namespace mk = detail;

// ---- forward ---------------------------------------------------------------------------------

// The phase-split source: the zero-padded image split into sh x sw phases,
//   xs[a][b][c][i][j] = xpad[c][i*sh + a][j*sw + b],   i < Hq = ceil(Hp/sh), j < Wq = ceil(Wp/sw).
// Row (c, kh, kw) of the im2col matrix, at output (oh, ow), is then xs[a][b][c][oh + qh][ow + qw]
// with kh*dh = qh*sh + a and kw*dw = qw*sw + b: a shifted view with row length Wq. For stride 1
// this is just the padded image.
struct Phases {
  int64_t Hq, Wq, slack;
  std::vector<char> used;  // phases that some tap reads (a 1x1 stride-2 kernel reads only one)

  explicit Phases(const Geom& g)
      : Hq((g.H + 2 * g.ph + g.sh - 1) / g.sh),
        Wq((g.W + 2 * g.pw + g.sw - 1) / g.sw),
        slack((g.KW - 1) * g.dw / g.sw),  // the last row's dropped columns run this far
        used(static_cast<size_t>(g.sh * g.sw), 0) {
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) used[kh * g.dh % g.sh * g.sw + kw * g.dw % g.sw] = 1;
  }
  int64_t size(const Geom& g) const { return g.sh * g.sw * g.Cg * Hq * Wq + slack; }
  std::vector<int64_t> offsets(const Geom& g) const {
    std::vector<int64_t> off(static_cast<size_t>(g.K));
    for (int64_t c = 0; c < g.Cg; ++c)
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t a = kh * g.dh % g.sh, qh = kh * g.dh / g.sh;
          const int64_t b = kw * g.dw % g.sw, qw = kw * g.dw / g.sw;
          off[(c * g.KH + kh) * g.KW + kw] = (((a * g.sw + b) * g.Cg + c) * Hq + qh) * Wq + qw;
        }
    return off;
  }
};

template <class T>
void split_phases(const Geom& g, const Phases& ph, const T* x, T* xs, bool cooperative) {
  const int64_t Hq = ph.Hq, Wq = ph.Wq, plane = Hq * Wq;
#pragma omp parallel for schedule(static) if (cooperative)
  for (int64_t c = 0; c < g.Cg; ++c) {
    for (int64_t a = 0; a < g.sh; ++a) {
      for (int64_t b = 0; b < g.sw; ++b) {
        if (!ph.used[a * g.sw + b]) continue;
        T* d = xs + ((a * g.sw + b) * g.Cg + c) * plane;
        // Columns j whose input column j*sw + b - pw lies inside the image.
        const int64_t lo = std::min(Wq, std::max<int64_t>(0, (g.pw - b + g.sw - 1) / g.sw));
        const int64_t hi = std::max(lo, std::min(Wq, (g.W + g.pw - b + g.sw - 1) / g.sw));
        for (int64_t i = 0; i < Hq; ++i) {
          T* dr = d + i * Wq;
          const int64_t ih = i * g.sh + a - g.ph;
          if (ih < 0 || ih >= g.H) {
            for (int64_t j = 0; j < Wq; ++j) dr[j] = T(0);
            continue;
          }
          // Plain loops, not memcpy/memset: rows are often only 8-32 values long.
          const T* xr = x + (c * g.H + ih) * g.W + b - g.pw;
          for (int64_t j = 0; j < lo; ++j) dr[j] = T(0);
          if (g.sw == 1) {
            for (int64_t j = lo; j < hi; ++j) dr[j] = xr[j];
          } else if (g.sw == 2) {  // a constant stride lets the compiler vectorise the gather
            for (int64_t j = lo; j < hi; ++j) dr[j] = xr[2 * j];
          } else {
            for (int64_t j = lo; j < hi; ++j) dr[j] = xr[g.sw * j];
          }
          for (int64_t j = hi; j < Wq; ++j) dr[j] = T(0);
        }
      }
    }
  }
  std::fill(xs + g.sh * g.sw * g.Cg * plane, xs + ph.size(g), T(0));
}

template <class T>
void forward_impl(const Geom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t vec = mk::gemm_vec_cols<T>(), tile = 3 * vec;
  const Phases ph(g);
  const std::vector<int64_t> off = ph.offsets(g);
  const int64_t psize = mk::packed_a_size<T>(g.Og, g.K);
  T* packed = scratch<T>(kPacked, g.G * psize);
  for (int64_t gi = 0; gi < g.G; ++gi)
    mk::pack_a(w + gi * g.Og * g.K, g.K, int64_t{1}, g.Og, g.K, packed + gi * psize);
  // Without padding or stride the input already is the (single-phase) source.
  const bool copy_in = g.sh > 1 || g.sw > 1 || g.ph > 0 || g.pw > 0 || ph.slack > 0;
  // When output rows are whole (or half) vectors the GEMM writes y directly, skipping the
  // Wq - OW columns between rows; otherwise it computes all OH*Wq columns and the extra ones
  // are dropped when copying out.
  const bool single_row = ph.Wq == g.OW;
  const bool direct = single_row || g.OW % vec == 0 || 2 * g.OW == vec;
  const int64_t ncols = direct ? g.P : g.OH * ph.Wq;
  const mk::ColumnRows layout =
      direct && !single_row ? mk::ColumnRows{g.OW, ph.Wq, g.OW} : mk::ColumnRows{ncols, 0, 0};
  for_units(usable_threads(g), g.N * g.G, [&](int64_t u, bool coop) {
    const int64_t gi = u % g.G, n = u / g.G;
    const T* xg = x + (n * g.C + gi * g.Cg) * g.H * g.W;
    const T* src = xg;
    if (copy_in) {
      T* buf = scratch<T>(kSource, ph.size(g));
      split_phases(g, ph, xg, buf, coop);
      src = buf;
    }
    T* yg = y + (n * g.O + gi * g.Og) * g.P;
    T* out = direct ? yg : scratch<T>(kOutput, g.Og * ncols);
    const T* bg = bias ? bias + gi * g.Og : nullptr;
    split_range(ncols, tile, coop, [&](int64_t j0, int64_t j1) {
      mk::gemm_packed_a(packed + gi * psize, g.Og, g.K, src, off.data(), out, ncols, bg, j0, j1,
                        layout);
    });
    if (!direct) {
#pragma omp parallel for schedule(static) if (coop)
      for (int64_t o = 0; o < g.Og; ++o)
        for (int64_t oh = 0; oh < g.OH; ++oh)
          for (int64_t ow = 0; ow < g.OW; ++ow)
            yg[o * g.P + oh * g.OW + ow] = out[(o * g.OH + oh) * ph.Wq + ow];
    }
  });
}

// ---- data gradient ---------------------------------------------------------------------------

// The adjoint of im2col: dx ([Cg, H, W]) = the sum of the columns. Accumulated in the phase
// layout of the forward source, where every tap's column is a contiguous run and the padding
// absorbs out-of-image terms, then merged into dx. Channels are independent, which makes the
// channel loop safe to split across threads.
template <class T>
void col2im(const Geom& g, const Phases& ph, const std::vector<int64_t>& off, const T* col, T* buf,
            T* dx, bool cooperative) {
  const int64_t Hq = ph.Hq, Wq = ph.Wq, plane = Hq * Wq;
#pragma omp parallel for schedule(static) if (cooperative)
  for (int64_t c = 0; c < g.Cg; ++c) {
    if (g.KH == 1 && g.KW == 1) {  // one tap: a strided copy into zeros is all it takes
      T* dxc = dx + c * g.H * g.W;
      const T* s = col + c * g.P;
      const int64_t lo = g.ow_lo(0), hi = g.ow_hi(0);
      std::fill(dxc, dxc + g.H * g.W, T(0));
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t ih = oh * g.sh - g.ph;
        if (ih < 0 || ih >= g.H) continue;
        T* xr = dxc + ih * g.W - g.pw;
        for (int64_t ow = lo; ow < hi; ++ow) xr[ow * g.sw] = s[oh * g.OW + ow];
      }
      continue;
    }
    for (int64_t p = 0; p < g.sh * g.sw; ++p) {
      T* d = buf + (p * g.Cg + c) * plane;
      std::fill(d, d + plane, T(0));
    }
    for (int64_t t = 0; t < g.KH * g.KW; ++t) {
      const int64_t k = c * g.KH * g.KW + t;
      T* d = buf + off[k];
      const T* s = col + k * g.P;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) d[oh * Wq + ow] += s[oh * g.OW + ow];
    }
    T* row = scratch<T>(kGradT, g.sw * Wq);  // one padded row, phases merged
    for (int64_t ih = 0; ih < g.H; ++ih) {
      const int64_t a = (ih + g.ph) % g.sh, i = (ih + g.ph) / g.sh;
      const T* src = buf + ((a * g.sw * g.Cg) + c) * plane + i * Wq;  // phase (a, 0)
      T* out = dx + (c * g.H + ih) * g.W;
      if (g.sw == 1) {
        for (int64_t iw = 0; iw < g.W; ++iw) out[iw] = src[iw + g.pw];
        continue;
      }
      if (g.sw == 2) {
        mk::interleave2(src, src + g.Cg * plane, Wq, row);
      } else {
        for (int64_t b = 0; b < g.sw; ++b)
          for (int64_t j = 0; j < Wq; ++j) row[j * g.sw + b] = src[b * g.Cg * plane + j];
      }
      for (int64_t iw = 0; iw < g.W; ++iw) out[iw] = row[iw + g.pw];
    }
  }
}

template <class T>
void backward_data_impl(const Geom& g, const T* dy, const T* w, T* dx) {
  const int64_t fh = g.dh * (g.KH - 1) - g.ph, fw = g.dw * (g.KW - 1) - g.pw;
  if (g.sh == 1 && g.sw == 1 && fh >= 0 && fw >= 0) {
    // dx = conv(dy, w'), w'[c][o][kh][kw] = w[o][c][KH-1-kh][KW-1-kw] within each group, with
    // padding d*(K-1) - pad: the adjoint of a stride-1 convolution is one too.
    T* wf = scratch<T>(kFlipped, g.C * g.Og * g.KH * g.KW);
    const int64_t taps = g.KH * g.KW;
    for (int64_t gi = 0; gi < g.G; ++gi)
      for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t o = 0; o < g.Og; ++o)
          for (int64_t t = 0; t < taps; ++t)
            wf[((gi * g.Cg + c) * g.Og + o) * taps + t] =
                w[((gi * g.Og + o) * g.Cg + c) * taps + (taps - 1 - t)];
    Conv2dParams p;
    p.pad_h = fh, p.pad_w = fw, p.dilation_h = g.dh, p.dilation_w = g.dw, p.groups = g.G;
    const Geom flipped({g.N, g.O, g.OH, g.OW}, {g.C, g.Og, g.KH, g.KW}, p);
    forward_impl(flipped, dy, static_cast<const T*>(wf), static_cast<const T*>(nullptr), dx);
    return;
  }
  // Strided (or over-padded): columns dcol [K, P] = w_g^T dy_g, scattered back onto the image.
  const int64_t psize = mk::packed_a_size<T>(g.K, g.Og);
  T* packed = scratch<T>(kPacked, g.G * psize);
  for (int64_t gi = 0; gi < g.G; ++gi)
    mk::pack_a(w + gi * g.Og * g.K, int64_t{1}, g.K, g.K, g.Og, packed + gi * psize);
  std::vector<int64_t> off(static_cast<size_t>(g.Og));
  for (int64_t o = 0; o < g.Og; ++o) off[o] = o * g.P;
  const int64_t tile = 3 * mk::gemm_vec_cols<T>();
  const Phases ph(g);
  const std::vector<int64_t> phase_off = ph.offsets(g);
  for_units(usable_threads(g), g.N * g.G, [&](int64_t u, bool coop) {
    const int64_t gi = u % g.G, n = u / g.G;
    const T* dyg = dy + (n * g.O + gi * g.Og) * g.P;
    T* dxg = dx + (n * g.C + gi * g.Cg) * g.H * g.W;
    T* col = scratch<T>(kOutput, g.K * g.P);
    split_range(g.P, tile, coop, [&](int64_t j0, int64_t j1) {
      mk::gemm_packed_a(packed + gi * psize, g.K, g.Og, dyg, off.data(), col, g.P,
                        static_cast<const T*>(nullptr), j0, j1, mk::ColumnRows{g.P, 0, 0});
    });
    col2im(g, ph, phase_off, col, scratch<T>(kSource, ph.size(g)), dxg, coop);
  });
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const Conv2dParams& p, ComputePrecision precision) {
  if (precision == ComputePrecision::bf16) return detail::conv2d_forward_bf16(x, w, bias, y, p);
  const char* op = "conv2d_forward";
  check_conv2d_operand(x, x, op, "x");
  check_conv2d_operand(w, x, op, "weight");
  check_conv2d_operand(y, x, op, "y");
  check_conv2d_shape(y, conv2d_output_shape(x.shape(), w.shape(), p), op, "y");
  if (bias.defined()) {
    check_conv2d_operand(bias, x, op, "bias");
    check_conv2d_shape(bias, {w.size(0)}, op, "bias");
  }
  const Geom g(x.shape(), w.shape(), p);
  if (y.numel() == 0) return;
  if (g.depthwise()) return detail::depthwise_forward(g, x, w, bias, y);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    forward_impl<T>(g, x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr,
                    y.data<T>());
  });
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p, ComputePrecision precision) {
  if (precision == ComputePrecision::bf16) return detail::conv2d_backward_data_bf16(dy, w, dx, p);
  const char* op = "conv2d_backward_data";
  check_conv2d_operand(dx, dx, op, "dx");
  check_conv2d_operand(dy, dx, op, "dy");
  check_conv2d_operand(w, dx, op, "weight");
  check_conv2d_shape(dy, conv2d_output_shape(dx.shape(), w.shape(), p), op, "dy");
  const Geom g(dx.shape(), w.shape(), p);
  if (dx.numel() == 0) return;
  if (dy.numel() == 0) return dx.zero_();
  if (g.depthwise()) return detail::depthwise_backward_data(g, dy, w, dx);
  dispatch_floating(dx.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    backward_data_impl<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>());
  });
}
}  // namespace tranq::kernels::cpu
