// Reference CPU pooling. Work is split over (n, c) planes; a plane is handled by one thread in
// a fixed order, so the backward's scatter-adds are deterministic without atomics.
#include "kernels/pool2d.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 14;

void check_tensor(const Tensor& t, const Shape& shape, DType dtype, const char* op,
                  const char* arg) {
  TRANQ_CHECK(t.defined() && t.shape() == shape && t.dtype() == dtype && t.is_contiguous(),
              "{}: {} must be a contiguous {}{}, got {}", op, arg, dtype_name(dtype),
              shape_str(shape), t.defined() ? tensor_str(t) : std::string("an undefined tensor"));
}

// Clipped window [lo, hi) along one dimension for output position o.
struct Window {
  int64_t lo, hi;
};
inline Window window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t size) {
  const int64_t start = o * stride - pad;
  return {std::max<int64_t>(start, 0), std::min(start + kernel, size)};
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y,
                        const Tensor& indices) {
  const char* op = "max_pool2d_forward";
  const Shape out = pool2d_output_shape(x, g, op);
  check_tensor(x, x.shape(), x.dtype(), op, "x");
  check_tensor(y, out, x.dtype(), op, "y");
  check_tensor(indices, out, DType::i32, op, "indices");
  const int64_t planes = out[0] * out[1], H = x.size(2), W = x.size(3), OH = out[2], OW = out[3];
  TRANQ_CHECK(H * W <= std::numeric_limits<int32_t>::max(), "{}: plane {}x{} too large", op, H, W);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    int32_t* pi = indices.data<int32_t>();
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
    for (int64_t p = 0; p < planes; ++p) {
      const T* in = px + p * H * W;
      T* o = py + p * OH * OW;
      int32_t* oi = pi + p * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const Window wh = window(oh, g.stride_h, g.pad_h, g.kernel_h, H);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Window ww = window(ow, g.stride_w, g.pad_w, g.kernel_w, W);
          // Starts at the first real element, so an all -inf window still routes its gradient.
          int64_t best_i = wh.lo * W + ww.lo;
          T best = in[best_i];
          for (int64_t h = wh.lo; h < wh.hi; ++h) {
            for (int64_t w = ww.lo; w < ww.hi; ++w) {
              const T v = in[h * W + w];
              if (v > best || std::isnan(v)) {
                best = v;
                best_i = h * W + w;
              }
            }
          }
          o[oh * OW + ow] = best;
          oi[oh * OW + ow] = static_cast<int32_t>(best_i);
        }
      }
    }
  });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dGeometry& g,
                         const Tensor& dx) {
  const char* op = "max_pool2d_backward";
  TRANQ_CHECK(dx.dim() == 4 && dy.dim() == 4, "{}: expected 4-d dy and dx, got {} and {}", op,
              tensor_str(dy), tensor_str(dx));
  TRANQ_CHECK(pool2d_output_shape(dx, g, op) == dy.shape(),
              "{}: dy {} is not what pooling dx {} with this geometry gives", op, tensor_str(dy),
              tensor_str(dx));
  check_tensor(dy, dy.shape(), dx.dtype(), op, "dy");
  check_tensor(indices, dy.shape(), DType::i32, op, "indices");
  check_tensor(dx, dx.shape(), dy.dtype(), op, "dx");
  TRANQ_CHECK(dy.size(0) == dx.size(0) && dy.size(1) == dx.size(1),
              "{}: dy {} and dx {} differ in N or C", op, tensor_str(dy), tensor_str(dx));
  const int64_t planes = dx.size(0) * dx.size(1), in_plane = dx.size(2) * dx.size(3),
                out_plane = dy.size(2) * dy.size(3);
  // Every index inside its output's window: the scatter below writes there, and the CUDA
  // version finds contributions by window, so both need it (integer count: deterministic).
  // Per plane, row by row: one 32-bit division per index (H*W < 2^31, checked by the forward).
  const int64_t OH = dy.size(2), OW = dy.size(3), H = dx.size(2), W = dx.size(3);
  const int32_t* pidx = indices.data<int32_t>();
  int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (indices.numel() > kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const int32_t* idx = pidx + p * out_plane;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const Window wh = window(oh, g.stride_h, g.pad_h, g.kernel_h, H);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const Window ww = window(ow, g.stride_w, g.pad_w, g.kernel_w, W);
        const int32_t v = idx[oh * OW + ow];
        const int32_t h = v / static_cast<int32_t>(W), w = v - h * static_cast<int32_t>(W);
        bad += (v < 0 || v >= in_plane || h < wh.lo || h >= wh.hi || w < ww.lo || w >= ww.hi);
      }
    }
  }
  TRANQ_CHECK(bad == 0,
              "{}: {} indices lie outside their pooling window; pass the indices and geometry of "
              "max_pool2d_forward",
              op, bad);
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pg = dy.data<T>();
    const int32_t* pi = indices.data<int32_t>();
    T* pd = dx.data<T>();
#pragma omp parallel for schedule(static) if (dx.numel() > kParallelMin)
    for (int64_t p = 0; p < planes; ++p) {
      T* d = pd + p * in_plane;
      const T* g = pg + p * out_plane;
      const int32_t* idx = pi + p * out_plane;
      std::fill(d, d + in_plane, T(0));
      for (int64_t i = 0; i < out_plane; ++i) d[idx[i]] += g[i];
    }
  });
}

void avg_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y) {
  const char* op = "avg_pool2d_forward";
  const Shape out = pool2d_output_shape(x, g, op);
  check_tensor(x, x.shape(), x.dtype(), op, "x");
  check_tensor(y, out, x.dtype(), op, "y");
  const int64_t planes = out[0] * out[1], H = x.size(2), W = x.size(3), OH = out[2], OW = out[3];
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    // Floor mode keeps every window inside the padded input, so the divisor is the full area.
    const T inv_area = T(1) / static_cast<T>(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
    for (int64_t p = 0; p < planes; ++p) {
      const T* in = px + p * H * W;
      T* o = py + p * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const Window wh = window(oh, g.stride_h, g.pad_h, g.kernel_h, H);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Window ww = window(ow, g.stride_w, g.pad_w, g.kernel_w, W);
          T s = 0;
          for (int64_t h = wh.lo; h < wh.hi; ++h)
            for (int64_t w = ww.lo; w < ww.hi; ++w) s += in[h * W + w];
          o[oh * OW + ow] = s * inv_area;
        }
      }
    }
  });
}

void avg_pool2d_backward(const Tensor& dy, const Pool2dGeometry& g, const Tensor& dx) {
  const char* op = "avg_pool2d_backward";
  const Shape out = pool2d_output_shape(dx, g, op);
  check_tensor(dx, dx.shape(), dy.dtype(), op, "dx");
  check_tensor(dy, out, dx.dtype(), op, "dy");
  const int64_t planes = out[0] * out[1], H = dx.size(2), W = dx.size(3), OH = out[2], OW = out[3];
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pg = dy.data<T>();
    T* pd = dx.data<T>();
    const T inv_area = T(1) / static_cast<T>(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (dx.numel() > kParallelMin)
    for (int64_t p = 0; p < planes; ++p) {
      T* d = pd + p * H * W;
      const T* gp = pg + p * OH * OW;
      std::fill(d, d + H * W, T(0));
      for (int64_t oh = 0; oh < OH; ++oh) {
        const Window wh = window(oh, g.stride_h, g.pad_h, g.kernel_h, H);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Window ww = window(ow, g.stride_w, g.pad_w, g.kernel_w, W);
          const T v = gp[oh * OW + ow] * inv_area;
          for (int64_t h = wh.lo; h < wh.hi; ++h)
            for (int64_t w = ww.lo; w < ww.hi; ++w) d[h * W + w] += v;
        }
      }
    }
  });
}

void global_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  const char* op = "global_avg_pool2d_forward";
  TRANQ_CHECK(x.dim() == 4 && x.size(2) * x.size(3) > 0,
              "{}: expected x [N,C,H,W] with H, W > 0, got {}", op, tensor_str(x));
  check_tensor(x, x.shape(), x.dtype(), op, "x");
  check_tensor(y, {x.size(0), x.size(1), 1, 1}, x.dtype(), op, "y");
  const int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const double inv = 1.0 / static_cast<double>(hw);
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
    for (int64_t p = 0; p < planes; ++p) {
      const T* in = px + p * hw;
      double s = 0;
      for (int64_t i = 0; i < hw; ++i) s += static_cast<double>(in[i]);
      py[p] = static_cast<T>(s * inv);
    }
  });
}

void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx) {
  const char* op = "global_avg_pool2d_backward";
  TRANQ_CHECK(dx.dim() == 4 && dx.size(2) * dx.size(3) > 0,
              "{}: expected dx [N,C,H,W] with H, W > 0, got {}", op, tensor_str(dx));
  check_tensor(dx, dx.shape(), dy.dtype(), op, "dx");
  check_tensor(dy, {dx.size(0), dx.size(1), 1, 1}, dx.dtype(), op, "dy");
  const int64_t planes = dx.size(0) * dx.size(1), hw = dx.size(2) * dx.size(3);
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pg = dy.data<T>();
    T* pd = dx.data<T>();
    const T inv = static_cast<T>(1.0 / static_cast<double>(hw));
#pragma omp parallel for schedule(static) if (dx.numel() > kParallelMin)
    for (int64_t p = 0; p < planes; ++p) {
      const T v = pg[p] * inv;
      std::fill(pd + p * hw, pd + (p + 1) * hw, v);
    }
  });
}

}  // namespace tranq::kernels::cpu
