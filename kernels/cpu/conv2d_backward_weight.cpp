// CPU convolution weight and bias gradients. The weight gradient reads the padded image
// directly as shifted views (see kernels/cpu/conv2d.cpp) at any stride, and sums over the batch
// in chunks of images, each into its own buffer, added in chunk order: bitwise reproducible for
// a given thread count.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu/conv2d_common.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

namespace tranq::kernels::cpu {

namespace {

using namespace conv;
namespace mk = detail;

// Weight gradients up to this many elements are summed in four chunks of images per thread
// (see backward_weight_impl), larger ones in one per thread to bound the buffers.
constexpr int64_t kSmallWeightElems = 1 << 18;

template <class T>
void backward_weight_impl(const Geom& g, const T* x, const T* dy, T* dw) {
  const int taps = g.KW == 3 ? 3 : 1;
  const int64_t ldg = mk::padded_ld<T>(g.Og);
  const int64_t kpad = mk::wgrad_rows<T>(g.K, taps, ldg);
  const int64_t tile_rows = mk::wgrad_tile_rows<T>(taps, ldg);
  const int64_t acc_size = g.G * kpad * ldg;
  const bool copy_in = g.ph > 0 || g.pw > 0;
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw;
  const std::vector<int64_t> off = shifted_offsets(g, Hp, Wp);

  // Adds unit u's contribution into acc ([G][kpad][ldg], dw transposed).
  auto accumulate = [&](int64_t u, T* acc, bool coop) {
    const int64_t gi = u % g.G, n = u / g.G;
    const T* xg = x + (n * g.C + gi * g.Cg) * g.H * g.W;
    const T* dyg = dy + (n * g.O + gi * g.Og) * g.P;
    const T* src = xg;
    if (copy_in) {
      T* pad = scratch<T>(kSource, g.Cg * Hp * Wp);
      pad_image(g, xg, Hp, Wp, pad, coop);
      src = pad;
    }
    // dy_g [Og, P] transposed to [P, ldg], zero beyond Og, so o runs along vectors.
    T* gt = scratch<T>(kGradT, g.P * ldg);
    const int64_t pchunk = (g.P + 3) / 4;
#pragma omp parallel for schedule(static) if (coop)
    for (int64_t p0 = 0; p0 < g.P; p0 += pchunk) {
      const int64_t p1 = std::min(g.P, p0 + pchunk);
      mk::transpose(dyg + p0, g.Og, p1 - p0, g.P, gt + p0 * ldg, ldg);
      if (ldg > g.Og) {
        for (int64_t p = p0; p < p1; ++p) std::fill(gt + p * ldg + g.Og, gt + (p + 1) * ldg, T(0));
      }
    }
    split_range(g.K, tile_rows, coop, [&](int64_t k0, int64_t k1) {
      mk::wgrad_accumulate(src, off.data(), k0, k1, taps, g.dw, g.OH, g.sh * Wp, g.sw, g.OW, gt,
                           ldg, acc + gi * kpad * ldg);
    });
  };
  auto write_dw = [&](const T* acc, int64_t parts) {
#pragma omp parallel for schedule(static) if (g.O * g.K > 4096)
    for (int64_t o = 0; o < g.O; ++o) {
      const int64_t gi = o / g.Og, ol = o % g.Og;
      for (int64_t k = 0; k < g.K; ++k) {
        const int64_t i = (gi * kpad + k) * ldg + ol;
        T s = acc[i];
        for (int64_t t = 1; t < parts; ++t) s += acc[t * acc_size + i];  // fixed order
        dw[o * g.K + k] = s;
      }
    }
  };

  const int64_t units = g.N * g.G;
  const int threads = usable_threads(g);
  if (units < threads || threads == 1) {
    std::vector<T> acc(static_cast<size_t>(acc_size), T(0));
    const bool coop = threads > 1;
    for (int64_t u = 0; u < units; ++u) accumulate(u, acc.data(), coop);
    write_dw(acc.data(), 1);
    return;
  }
  // Contiguous chunks of units (their number set by the shapes and thread count), each summed
  // into its own buffer, the buffers then added in chunk order: the result does not depend on
  // which thread ran which chunk, so chunks are handed out dynamically (a thread slowed down
  // by a busy core takes fewer).
  const int64_t per_thread = acc_size <= kSmallWeightElems ? 4 : 1;
  const int64_t chunks = std::min<int64_t>(units, per_thread * threads);
  // Kept between calls (no page faults); each chunk clears its own buffer.
  T* partial = scratch<T>(kPartial, chunks * acc_size);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    std::fill(partial + ch * acc_size, partial + (ch + 1) * acc_size, T(0));
    for (int64_t u = units * ch / chunks; u < units * (ch + 1) / chunks; ++u)
      accumulate(u, partial + ch * acc_size, false);
  }
  write_dw(partial, chunks);
}

// Sum of n values with 16 independent lanes (vectorisable without reassociation licence).
template <class T>
double sum_contiguous(const T* v, int64_t n) {
  T lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] += v[i + l];
  }
  double s = 0;
  for (int l = 0; l < 16; ++l) s += lanes[l];
  for (; i < n; ++i) s += v[i];
  return s;
}
}  // namespace

void conv2d_backward_weight(const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Conv2dParams& p, ComputePrecision precision) {
  if (precision == ComputePrecision::bf16) return detail::conv2d_backward_weight_bf16(x, dy, dw, p);
  const char* op = "conv2d_backward_weight";
  check_conv2d_operand(x, x, op, "x");
  check_conv2d_operand(dy, x, op, "dy");
  check_conv2d_operand(dw, x, op, "dw");
  check_conv2d_shape(dy, conv2d_output_shape(x.shape(), dw.shape(), p), op, "dy");
  const Geom g(x.shape(), dw.shape(), p);
  if (dw.numel() == 0) return;
  if (dy.numel() == 0) return dw.zero_();
  if (g.depthwise()) return detail::depthwise_backward_weight(g, x, dy, dw);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    backward_weight_impl<T>(g, x.data<T>(), dy.data<T>(), dw.data<T>());
  });
}

void conv2d_backward_bias(const Tensor& dy, const Tensor& db) {
  const char* op = "conv2d_backward_bias";
  check_conv2d_operand(dy, dy, op, "dy");
  check_conv2d_operand(db, dy, op, "db");
  TRANQ_CHECK(dy.dim() == 4, "{}: expected dy [N, O, OH, OW], got {}", op, tensor_str(dy));
  check_conv2d_shape(db, {dy.size(1)}, op, "db");
  const int64_t N = dy.size(0), O = dy.size(1), P = dy.size(2) * dy.size(3);
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* g = dy.data<T>();
    T* out = db.data<T>();
    // Each channel is summed by one thread in a fixed order: independent of the thread count.
#pragma omp parallel for schedule(static) if (N * O * P > (1 << 15))
    for (int64_t o = 0; o < O; ++o) {
      double total = 0;
      for (int64_t n = 0; n < N; ++n) total += sum_contiguous(g + (n * O + o) * P, P);
      out[o] = static_cast<T>(total);
    }
  });
}
}  // namespace tranq::kernels::cpu
