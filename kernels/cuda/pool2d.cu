// CUDA pooling, following kernels/cpu/pool2d.cpp so that every result equals the CPU's bits:
// each output (or, for the backward of average pooling, each input) is computed by one thread
// that visits the same elements in the same order as the CPU's loops and rounds each operation
// on its own.
//
//  - max forward: one thread per output, the window scanned row by row (NaN wins, first
//    maximum kept).
//  - max backward: one thread per input gathers dy of the windows that cover it and chose it
//    (their recorded index), in the (oh, ow) order the CPU scatters them, from +0: the same
//    sum.
//  - avg backward: one thread per input gathers dy * (1/area) of the windows that cover it, in
//    the (oh, ow) order the CPU scatters them, from +0: the same sum.
//  - global average: one thread per plane sums it in double in index order.
#include <cmath>
#include <limits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/pool2d.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::add_rn;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;
using ::tranq::cuda::mul_rn;

void check_tensor(const Tensor& t, const Shape& shape, DType dtype, const char* op,
                  const char* arg) {
  TRANQ_CHECK(t.defined() && t.shape() == shape && t.dtype() == dtype && t.is_contiguous(),
              "{}: {} must be a contiguous {}{}, got {}", op, arg, dtype_name(dtype),
              shape_str(shape), t.defined() ? tensor_str(t) : std::string("an undefined tensor"));
}

// Sizes of one pooling launch.
struct Dims {
  int64_t planes, H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw;
};

Dims dims_of(const Shape& in, const Shape& out, const Pool2dGeometry& g) {
  return {in[0] * in[1], in[2],      in[3],      out[2],  out[3], g.kernel_h,
          g.kernel_w,    g.stride_h, g.stride_w, g.pad_h, g.pad_w};
}

__device__ inline int64_t lo_of(int64_t o, int64_t stride, int64_t pad) {
  const int64_t s = o * stride - pad;
  return s > 0 ? s : 0;
}
__device__ inline int64_t hi_of(int64_t o, int64_t stride, int64_t pad, int64_t kernel,
                                int64_t size) {
  const int64_t e = o * stride - pad + kernel;
  return e < size ? e : size;
}

template <class T>
__global__ void max_forward_kernel(const T* x, T* y, int32_t* indices, Dims d) {
  const int64_t total = d.planes * d.OH * d.OW;
  TRANQ_GRID_STRIDE_LOOP(i, total) {
    const int64_t ow = i % d.OW, oh = (i / d.OW) % d.OH, p = i / (d.OW * d.OH);
    const T* in = x + p * d.H * d.W;
    const int64_t h0 = lo_of(oh, d.sh, d.ph), h1 = hi_of(oh, d.sh, d.ph, d.kh, d.H);
    const int64_t w0 = lo_of(ow, d.sw, d.pw), w1 = hi_of(ow, d.sw, d.pw, d.kw, d.W);
    int64_t best_i = h0 * d.W + w0;
    T best = in[best_i];
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t w = w0; w < w1; ++w) {
        const T v = in[h * d.W + w];
        if (v > best || isnan(v)) {
          best = v;
          best_i = h * d.W + w;
        }
      }
    }
    y[i] = best;
    indices[i] = static_cast<int32_t>(best_i);
  }
}

template <class T>
__global__ void avg_forward_kernel(const T* x, T* y, Dims d, T inv_area) {
  const int64_t total = d.planes * d.OH * d.OW;
  TRANQ_GRID_STRIDE_LOOP(i, total) {
    const int64_t ow = i % d.OW, oh = (i / d.OW) % d.OH, p = i / (d.OW * d.OH);
    const T* in = x + p * d.H * d.W;
    const int64_t h0 = lo_of(oh, d.sh, d.ph), h1 = hi_of(oh, d.sh, d.ph, d.kh, d.H);
    const int64_t w0 = lo_of(ow, d.sw, d.pw), w1 = hi_of(ow, d.sw, d.pw, d.kw, d.W);
    T s = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) s = add_rn(s, in[h * d.W + w]);
    y[i] = mul_rn(s, inv_area);
  }
}

// First output index o (along one dimension) whose window [o*stride - pad, +kernel) reaches
// position h, and one past the last that starts at or before h.
__device__ inline int64_t first_window(int64_t h, int64_t stride, int64_t pad, int64_t kernel) {
  const int64_t num = h + pad - kernel + 1;  // o*stride >= num
  return num <= 0 ? 0 : (num + stride - 1) / stride;
}
__device__ inline int64_t end_window(int64_t h, int64_t stride, int64_t pad, int64_t count) {
  const int64_t e = (h + pad) / stride + 1;  // o*stride <= h + pad
  return e < count ? e : count;
}

template <class T>
__global__ void avg_backward_kernel(const T* dy, T* dx, Dims d, T inv_area) {
  const int64_t total = d.planes * d.H * d.W;
  TRANQ_GRID_STRIDE_LOOP(i, total) {
    const int64_t w = i % d.W, h = (i / d.W) % d.H, p = i / (d.W * d.H);
    const T* g = dy + p * d.OH * d.OW;
    const int64_t oh0 = first_window(h, d.sh, d.ph, d.kh), oh1 = end_window(h, d.sh, d.ph, d.OH);
    const int64_t ow0 = first_window(w, d.sw, d.pw, d.kw), ow1 = end_window(w, d.sw, d.pw, d.OW);
    T s = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) s = add_rn(s, mul_rn(g[oh * d.OW + ow], inv_area));
    dx[i] = s;
  }
}

// Thread i: input element (p, h, w) adds dy of the outputs whose window covers it and whose
// argmax it is, in output order, from +0: the CPU's scatter adds the same values to the same
// zero in the same order, so the bits agree.
template <class T>
__global__ void max_backward_kernel(const T* dy, const int32_t* indices, T* dx, Dims d) {
  const int64_t total = d.planes * d.H * d.W;
  TRANQ_GRID_STRIDE_LOOP(i, total) {
    const int64_t w = i % d.W, h = (i / d.W) % d.H, p = i / (d.W * d.H);
    const T* g = dy + p * d.OH * d.OW;
    const int32_t* idx = indices + p * d.OH * d.OW;
    const int32_t target = static_cast<int32_t>(h * d.W + w);
    const int64_t oh0 = first_window(h, d.sh, d.ph, d.kh), oh1 = end_window(h, d.sh, d.ph, d.OH);
    const int64_t ow0 = first_window(w, d.sw, d.pw, d.kw), ow1 = end_window(w, d.sw, d.pw, d.OW);
    T s = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow)
        if (idx[oh * d.OW + ow] == target) s = add_rn(s, g[oh * d.OW + ow]);
    dx[i] = s;
  }
}

template <class T>
__global__ void global_avg_forward_kernel(const T* x, T* y, int64_t planes, int64_t hw,
                                          double inv) {
  TRANQ_GRID_STRIDE_LOOP(p, planes) {
    const T* in = x + p * hw;
    double s = 0;
    for (int64_t i = 0; i < hw; ++i) s = add_rn(s, static_cast<double>(in[i]));
    y[p] = static_cast<T>(mul_rn(s, inv));
  }
}

template <class T>
__global__ void global_avg_backward_kernel(const T* dy, T* dx, int64_t planes, int64_t hw, T inv) {
  const int64_t total = planes * hw;
  TRANQ_GRID_STRIDE_LOOP(i, total) dx[i] = mul_rn(dy[i / hw], inv);
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y,
                        const Tensor& indices) {
  const char* op = "max_pool2d_forward";
  const Shape out = pool2d_output_shape(x, g, op);
  check_tensor(x, x.shape(), x.dtype(), op, "x");
  check_tensor(y, out, x.dtype(), op, "y");
  check_tensor(indices, out, DType::i32, op, "indices");
  check_on_device(op, x.device(), {{"y", &y}, {"indices", &indices}});
  TRANQ_CHECK(x.size(2) * x.size(3) <= std::numeric_limits<int32_t>::max(),
              "{}: plane {}x{} too large", op, x.size(2), x.size(3));
  const Dims d = dims_of(x.shape(), out, g);
  const int64_t total = y.numel();
  if (total == 0) return;
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    max_forward_kernel<T><<<grid_for(total), kThreads, 0, current_stream(dev)>>>(
        x.data<T>(), y.data<T>(), indices.data<int32_t>(), d);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dGeometry& g,
                         const Tensor& dx) {
  const char* op = "max_pool2d_backward";
  check_defined(dy, op, "dy");
  check_defined(dx, op, "dx");
  TRANQ_CHECK(dx.dim() == 4 && dy.dim() == 4, "{}: expected 4-d dy and dx, got {} and {}", op,
              tensor_str(dy), tensor_str(dx));
  check_tensor(dy, dy.shape(), dx.dtype(), op, "dy");
  check_tensor(indices, dy.shape(), DType::i32, op, "indices");
  check_tensor(dx, dx.shape(), dy.dtype(), op, "dx");
  TRANQ_CHECK(pool2d_output_shape(dx, g, op) == dy.shape(),
              "{}: dy {} is not what pooling dx {} with this geometry gives", op, tensor_str(dy),
              tensor_str(dx));
  check_on_device(op, dy.device(), {{"indices", &indices}, {"dx", &dx}});
  // Indices outside their window (not from max_pool2d_forward with g) are not checked here,
  // which would cost a host round trip: they are skipped, where the CPU refuses them.
  const Dims d = dims_of(dx.shape(), dy.shape(), g);
  const int64_t total = dx.numel();
  if (total == 0) return;
  const int dev = dy.device().index;
  DeviceGuard guard(dev);
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    max_backward_kernel<T><<<grid_for(total), kThreads, 0, current_stream(dev)>>>(
        dy.data<T>(), indices.data<int32_t>(), dx.data<T>(), d);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y) {
  const char* op = "avg_pool2d_forward";
  const Shape out = pool2d_output_shape(x, g, op);
  check_tensor(x, x.shape(), x.dtype(), op, "x");
  check_tensor(y, out, x.dtype(), op, "y");
  check_on_device(op, x.device(), {{"y", &y}});
  const Dims d = dims_of(x.shape(), out, g);
  const int64_t total = y.numel();
  if (total == 0) return;
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T inv_area = T(1) / static_cast<T>(g.kernel_h * g.kernel_w);
    avg_forward_kernel<T><<<grid_for(total), kThreads, 0, current_stream(dev)>>>(
        x.data<T>(), y.data<T>(), d, inv_area);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_backward(const Tensor& dy, const Pool2dGeometry& g, const Tensor& dx) {
  const char* op = "avg_pool2d_backward";
  check_defined(dy, op, "dy");
  check_defined(dx, op, "dx");
  const Shape out = pool2d_output_shape(dx, g, op);
  check_tensor(dx, dx.shape(), dy.dtype(), op, "dx");
  check_tensor(dy, out, dx.dtype(), op, "dy");
  check_on_device(op, dy.device(), {{"dx", &dx}});
  const Dims d = dims_of(dx.shape(), out, g);
  const int64_t total = dx.numel();
  if (total == 0) return;
  const int dev = dy.device().index;
  DeviceGuard guard(dev);
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T inv_area = T(1) / static_cast<T>(g.kernel_h * g.kernel_w);
    avg_backward_kernel<T><<<grid_for(total), kThreads, 0, current_stream(dev)>>>(
        dy.data<T>(), dx.data<T>(), d, inv_area);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void global_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  const char* op = "global_avg_pool2d_forward";
  check_defined(x, op, "x");
  TRANQ_CHECK(x.dim() == 4 && x.size(2) * x.size(3) > 0,
              "{}: expected x [N,C,H,W] with H, W > 0, got {}", op, tensor_str(x));
  check_tensor(x, x.shape(), x.dtype(), op, "x");
  check_tensor(y, {x.size(0), x.size(1), 1, 1}, x.dtype(), op, "y");
  check_on_device(op, x.device(), {{"y", &y}});
  const int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  if (planes == 0) return;
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const double inv = 1.0 / static_cast<double>(hw);
    global_avg_forward_kernel<T><<<grid_for(planes), kThreads, 0, current_stream(dev)>>>(
        x.data<T>(), y.data<T>(), planes, hw, inv);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx) {
  const char* op = "global_avg_pool2d_backward";
  check_defined(dx, op, "dx");
  TRANQ_CHECK(dx.dim() == 4 && dx.size(2) * dx.size(3) > 0,
              "{}: expected dx [N,C,H,W] with H, W > 0, got {}", op, tensor_str(dx));
  check_tensor(dx, dx.shape(), dy.dtype(), op, "dx");
  check_tensor(dy, {dx.size(0), dx.size(1), 1, 1}, dx.dtype(), op, "dy");
  check_on_device(op, dx.device(), {{"dy", &dy}});
  const int64_t planes = dx.size(0) * dx.size(1), hw = dx.size(2) * dx.size(3);
  if (planes == 0) return;
  const int dev = dx.device().index;
  DeviceGuard guard(dev);
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T inv = static_cast<T>(1.0 / static_cast<double>(hw));
    global_avg_backward_kernel<T><<<grid_for(planes * hw), kThreads, 0, current_stream(dev)>>>(
        dy.data<T>(), dx.data<T>(), planes, hw, inv);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace tranq::kernels::cuda
