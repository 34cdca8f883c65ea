// CUDA fake quantisation, its straight-through backward and dequantisation of stored codes.
// Same expressions as kernels/cpu/quantize.cpp through kernels/quant_math.h; t = x * m is an
// explicitly rounded product (mul_rn) so that nvcc cannot fuse it into later arithmetic, which
// keeps codes and values equal to the CPU's bit for bit.
//
// Block j handles piece j of quant_piece(j, inner, kCudaChunk): one scale per block. dscale is
// reduced without float atomics: each thread sums its elements in order (double), the block
// adds the threads' sums in a fixed tree, and a second kernel (one block per channel) adds a
// channel's block sums in a fixed split and tree, so the result is the same bits on every run.
#include <cmath>

#include "core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/quant_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/quantize.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::add_rn;
using ::tranq::cuda::block_sum;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_exact;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;
using ::tranq::cuda::mul_rn;

template <class T, class C, bool kBinary, bool kCodes>
__global__ void forward_kernel(const T* x, const T* scale, T* y, C* codes, int64_t inner,
                               QuantRange r) {
  int64_t c, b, e;
  quant_piece(blockIdx.x, inner, kCudaChunk, &c, &b, &e);
  const T m = quant_multiplier(scale[c], r);
  const T lo = static_cast<T>(r.lo), hi = static_cast<T>(r.hi);
  const T inv_g = T(1) / static_cast<T>(r.g);
  for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) {
    const T t = mul_rn(x[i], m);
    const T level = kBinary ? quant_level_binary(t) : quant_level_multibit(t, lo, hi);
    y[i] = mul_rn(level, inv_g);  // y may alias x: element i is read above, written here
    if constexpr (kCodes) codes[i] = static_cast<C>(static_cast<int32_t>(level));
  }
}

// dx (kDx) and the block's sum of dy*x over inside elements into partial[blockIdx.x] (kDs).
// dy[i] and x[i] are read before dx[i] is written, so dx may alias dy.
template <class T, bool kDx, bool kDs>
__global__ void backward_kernel(const T* x, const T* scale, const T* dy, T* dx, double* partial,
                                int64_t inner, QuantRange r) {
  __shared__ double smem[kThreads];
  int64_t c, b, e;
  quant_piece(blockIdx.x, inner, kCudaChunk, &c, &b, &e);
  const T s = scale[c];
  const T m = quant_multiplier(s, r), inv = quant_inv_scale(s);
  const T lo = static_cast<T>(r.lo), hi = static_cast<T>(r.hi);
  double acc = 0.0;
  for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) {
    const T xv = x[i], g = dy[i];
    const T t = mul_rn(xv, m);
    const bool in = lo <= t && t <= hi;
    if constexpr (kDs) {
      if (in) acc = add_rn(acc, mul_rn(static_cast<double>(g), static_cast<double>(xv)));
    }
    if constexpr (kDx) dx[i] = in ? mul_rn(g, inv) : T(0);
  }
  if constexpr (kDs) {
    const double total = block_sum(acc, smem);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
  }
}

// dscale_c from channel c's `per` block sums: one block per channel, summed in a fixed split and
// tree (the same bits on every run; a single thread would walk thousands of dependent adds for
// one large activation), then the CPU's final formula.
template <class T>
__global__ void dscale_kernel(const double* partial, const T* scale, T* dscale, int64_t per,
                              double factor) {
  __shared__ double smem[kThreads];
  const int64_t c = blockIdx.x;
  double acc = 0.0;
  for (int64_t q = threadIdx.x; q < per; q += blockDim.x) acc = add_rn(acc, partial[c * per + q]);
  const double total = block_sum(acc, smem);
  if (threadIdx.x == 0) {
    const double s = static_cast<double>(scale[c]);
    const double a = fabs(s);
    // d value / d|s| = -x/|s|^2 inside; d|s|/ds = sign(s).
    dscale[c] = static_cast<T>(total * factor * ((s < 0 ? 1.0 : -1.0) / (a * a)));
  }
}

// y = code * (1/g); *bad += codes outside [lo, hi] (or 0 for binary codes).
template <class C, class T>
__global__ void dequantize_kernel(const C* codes, T* y, int64_t n, int32_t lo, int32_t hi,
                                  bool binary, T inv_g, unsigned long long* bad) {
  __shared__ long long smem[kThreads];
  long long count = 0;
  TRANQ_GRID_STRIDE_LOOP(i, n) {
    const int32_t c = codes[i];
    count += (c < lo || c > hi || (binary && c == 0)) ? 1 : 0;
    y[i] = mul_rn(static_cast<T>(c), inv_g);
  }
  const long long total = block_sum(count, smem);
  if (threadIdx.x == 0 && total != 0) atomicAdd(bad, static_cast<unsigned long long>(total));
}

int64_t num_pieces(const Tensor& x, const Tensor& scale) {
  const int64_t inner = x.numel() / scale.numel();
  return scale.numel() * quant_pieces_per_channel(inner, kCudaChunk);
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
  check_on_device(op, x.device(), {{"scale", &scale}, {"y", &y}, {"codes", &codes}});
  DeviceGuard guard(x.device().index);
  cudaStream_t stream = current_stream(x.device().index);
  const int64_t inner = x.numel() / scale.numel();
  const unsigned grid = grid_exact(num_pieces(x, scale), op);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto ctag) {
      using C = decltype(ctag);
      const T* px = x.data<T>();
      const T* ps = scale.data<T>();
      T* py = y.data<T>();
      C* pc = codes.defined() ? codes.data<C>() : nullptr;
      if (r.binary_sign) {
        if (pc) {
          forward_kernel<T, C, true, true><<<grid, kThreads, 0, stream>>>(px, ps, py, pc, inner, r);
        } else {
          forward_kernel<T, C, true, false>
              <<<grid, kThreads, 0, stream>>>(px, ps, py, pc, inner, r);
        }
      } else if (pc) {
        forward_kernel<T, C, false, true><<<grid, kThreads, 0, stream>>>(px, ps, py, pc, inner, r);
      } else {
        forward_kernel<T, C, false, false><<<grid, kThreads, 0, stream>>>(px, ps, py, pc, inner, r);
      }
      TRANQ_CUDA_CHECK_LAUNCH();
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
  check_on_device(op, x.device(),
                  {{"scale", &scale}, {"dy", &dy}, {"dx", &dx}, {"dscale", &dscale}});
  if (!dx.defined() && !dscale.defined()) return;
  DeviceGuard guard(x.device().index);
  cudaStream_t stream = current_stream(x.device().index);
  const int64_t channels = scale.numel(), inner = x.numel() / channels;
  const int64_t pieces = num_pieces(x, scale);
  const unsigned grid = grid_exact(pieces, op);
  // Block sums of dscale; freed at the end of the call while the kernels may still be queued,
  // which the stream-ordered caching allocator allows (see kernels/cuda/device_allocator.cuh).
  Buffer partial(dscale.defined() ? static_cast<size_t>(pieces) * sizeof(double) : 0, x.device());
  double* pp = static_cast<double*>(partial.data());
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* ps = scale.data<T>();
    const T* pg = dy.data<T>();
    T* pdx = dx.defined() ? dx.data<T>() : nullptr;
    if (dx.defined() && dscale.defined()) {
      backward_kernel<T, true, true><<<grid, kThreads, 0, stream>>>(px, ps, pg, pdx, pp, inner, r);
    } else if (dx.defined()) {
      backward_kernel<T, true, false><<<grid, kThreads, 0, stream>>>(px, ps, pg, pdx, pp, inner, r);
    } else {
      backward_kernel<T, false, true><<<grid, kThreads, 0, stream>>>(px, ps, pg, pdx, pp, inner, r);
    }
    TRANQ_CUDA_CHECK_LAUNCH();
    if (dscale.defined()) {
      const int64_t per = pieces / channels;
      dscale_kernel<T><<<grid_exact(channels, op), kThreads, 0, stream>>>(
          pp, ps, dscale.data<T>(), per, grad_scale_factor);
      TRANQ_CUDA_CHECK_LAUNCH();
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
  check_on_device(op, codes.device(), {{"y", &y}});
  const int64_t n = codes.numel();
  if (n == 0) return;
  DeviceGuard guard(codes.device().index);
  cudaStream_t stream = current_stream(codes.device().index);
  Buffer bad_buf(sizeof(unsigned long long), codes.device());
  auto* bad = static_cast<unsigned long long*>(bad_buf.data());
  TRANQ_CUDA_CHECK(cudaMemsetAsync(bad, 0, sizeof(unsigned long long), stream));
  dispatch_floating(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T inv_g = T(1) / static_cast<T>(r.g);
    if (codes.dtype() == DType::u8) {
      dequantize_kernel<uint8_t, T><<<grid_for(n), kThreads, 0, stream>>>(
          codes.data<uint8_t>(), y.data<T>(), n, r.lo, r.hi, r.binary_sign, inv_g, bad);
    } else {
      dequantize_kernel<int8_t, T><<<grid_for(n), kThreads, 0, stream>>>(
          codes.data<int8_t>(), y.data<T>(), n, r.lo, r.hi, r.binary_sign, inv_g, bad);
    }
    TRANQ_CUDA_CHECK_LAUNCH();
  });
  unsigned long long host_bad = 0;
  TRANQ_CUDA_CHECK(
      cudaMemcpyAsync(&host_bad, bad, sizeof host_bad, cudaMemcpyDeviceToHost, stream));
  ::tranq::cuda::note_host_wait();
  TRANQ_CUDA_CHECK(cudaStreamSynchronize(stream));
  TRANQ_CHECK(host_bad == 0,
              "dequantize_codes: {} of {} codes lie outside [{}, {}]{}; were they produced "
              "with this QuantRange?",
              host_bad, n, r.lo, r.hi, r.binary_sign ? " or are 0 (binary codes are -1, +1)" : "");
}

}  // namespace tranq::kernels::cuda
