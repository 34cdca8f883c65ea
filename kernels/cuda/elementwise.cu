// CUDA elementwise ops, following kernels/cpu/elementwise.cpp element by element. Each
// arithmetic operation is rounded on its own (mul_rn, add_rn: nvcc would otherwise fuse
// alpha*a + beta*b into an FMA), so add, mul, scale and the ReLUs give the CPU's bits.
//
// sum_all is deterministic: block b sums elements [b*kSumChunk, (b+1)*kSumChunk) in double (each
// thread a fixed strided subset, then block_sum's fixed tree) into partial[b]; one block then
// sums the partials the same way. No atomics, so the bits depend only on n.
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

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

// Elements per block of sum_all's first pass: 16 per thread.
constexpr int64_t kSumChunk = 16 * kThreads;

void check_binary(const Tensor& a, const Tensor& b, const Tensor& out, const char* op) {
  check_defined(a, op, "a");
  check_defined(b, op, "b");
  check_defined(out, op, "out");
  check_same_shape(a, b, op);
  check_same_shape(a, out, op);
  TRANQ_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), "{}: dtypes differ: {}, {}, {}",
              op, tensor_str(a), tensor_str(b), tensor_str(out));
  TRANQ_CHECK(a.is_contiguous() && b.is_contiguous() && out.is_contiguous(),
              "{}: needs contiguous tensors", op);
  check_on_device(op, a.device(), {{"b", &b}, {"out", &out}});
}

template <class T>
struct AddOp {
  __device__ T operator()(T x, T y) const { return add_rn(x, y); }
};
template <class T>
struct MulOp {
  __device__ T operator()(T x, T y) const { return mul_rn(x, y); }
};
template <class T>
struct AxpbyOp {
  T alpha, beta;
  __device__ T operator()(T x, T y) const { return add_rn(mul_rn(alpha, x), mul_rn(beta, y)); }
};
template <class T>
struct ScaleOp {
  T s;
  __device__ T operator()(T x, T) const { return mul_rn(s, x); }
};
// min(max(x, 0), cap) with the CPU's comparisons (NaN stays NaN, as there and in PyTorch).
template <class T>
struct ReluOp {
  T cap;
  bool capped;
  __device__ T operator()(T x, T) const {
    if (capped) return x <= T(0) ? T(0) : (x >= cap ? cap : x);
    return x <= T(0) ? T(0) : x;
  }
};
// dy where 0 < x < cap (cap = inf when uncapped); the kinks get 0, as in PyTorch.
template <class T>
struct ReluGradOp {
  T cap;
  __device__ T operator()(T x, T g) const { return (x > T(0) && x < cap) ? g : T(0); }
};

// out may alias a or b: each element is read before it is written, by the same thread.
template <class T, class F>
__global__ void binary_kernel(const T* a, const T* b, T* out, int64_t n, F f) {
  TRANQ_GRID_STRIDE_LOOP(i, n) out[i] = f(a[i], b[i]);
}

template <class F>
void launch_binary(const Tensor& a, const Tensor& b, const Tensor& out, const char* op, F make_op) {
  const int64_t n = a.numel();
  if (n == 0) return;
  const int dev = a.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  dispatch_floating(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const auto f = make_op(T{});
    binary_kernel<<<grid_for(n), kThreads, 0, stream>>>(a.data<T>(), b.data<T>(), out.data<T>(), n,
                                                        f);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

// Square: sum x_i^2 (each square in double) instead of x_i.
template <class T, bool Square>
__global__ void sum_partials_kernel(const T* x, int64_t n, double* partial) {
  __shared__ double smem[kThreads];
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kSumChunk;
  const int64_t end = begin + kSumChunk < n ? begin + kSumChunk : n;
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double v = static_cast<double>(x[i]);
    s += Square ? __dmul_rn(v, v) : v;
  }
  const double total = block_sum(s, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

template <class T>
__global__ void sum_final_kernel(const double* partial, int64_t count, T* out) {
  __shared__ double smem[kThreads];
  double s = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  const double total = block_sum(s, smem);
  if (threadIdx.x == 0) *out = static_cast<T>(total);
}

}  // namespace

void add(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_binary(a, b, out, "add");
  launch_binary(a, b, out, "add", [](auto t) { return AddOp<decltype(t)>{}; });
}

void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, const Tensor& out) {
  check_binary(a, b, out, "axpby");
  launch_binary(a, b, out, "axpby", [alpha, beta](auto t) {
    using T = decltype(t);
    return AxpbyOp<T>{static_cast<T>(alpha), static_cast<T>(beta)};
  });
}

void mul(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_binary(a, b, out, "mul");
  launch_binary(a, b, out, "mul", [](auto t) { return MulOp<decltype(t)>{}; });
}

void scale(const Tensor& a, double s, const Tensor& out) {
  check_binary(a, a, out, "scale");
  launch_binary(a, a, out, "scale", [s](auto t) {
    using T = decltype(t);
    return ScaleOp<T>{static_cast<T>(s)};
  });
}

void relu_forward(const Tensor& x, const Tensor& y, double cap) {
  check_binary(x, x, y, "relu_forward");
  launch_binary(x, x, y, "relu_forward", [cap](auto t) {
    using T = decltype(t);
    return ReluOp<T>{cap > 0 ? static_cast<T>(cap) : T(0), cap > 0};
  });
}

void relu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, double cap) {
  check_binary(x, dy, dx, "relu_backward");
  launch_binary(x, dy, dx, "relu_backward", [cap](auto t) {
    using T = decltype(t);
    return ReluGradOp<T>{cap > 0 ? static_cast<T>(cap) : std::numeric_limits<T>::infinity()};
  });
}

namespace {
// Both passes of sum_all / sum_squares on the current stream; out is a T (sum_all) or a
// double (sum_squares).
template <bool Square>
void launch_sum(const Tensor& x, const Tensor& out, const char* op) {
  check_on_device(op, x.device(), {{"out", &out}});
  const int64_t n = x.numel();
  const int64_t blocks = n == 0 ? 1 : (n + kSumChunk - 1) / kSumChunk;
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  Buffer partial = scratch_buffer(static_cast<size_t>(blocks) * sizeof(double), x.device());
  auto* pp = static_cast<double*>(partial.data());
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    using Out = std::conditional_t<Square, double, T>;
    sum_partials_kernel<T, Square>
        <<<grid_exact(blocks, op), kThreads, 0, stream>>>(x.data<T>(), n, pp);
    TRANQ_CUDA_CHECK_LAUNCH();
    sum_final_kernel<Out><<<1, kThreads, 0, stream>>>(pp, blocks, out.data<Out>());
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}
}  // namespace

void sum_all(const Tensor& x, const Tensor& out) {
  const char* op = "sum_all";
  check_defined(x, op, "x");
  check_defined(out, op, "out");
  TRANQ_CHECK(out.numel() == 1 && out.dtype() == x.dtype(), "sum_all: bad output {}",
              tensor_str(out));
  TRANQ_CHECK(x.is_contiguous(), "sum_all: needs a contiguous tensor");
  launch_sum<false>(x, out, op);
}

void sum_squares(const Tensor& x, const Tensor& out) {
  const char* op = "sum_squares";
  check_defined(x, op, "x");
  check_defined(out, op, "out");
  TRANQ_CHECK(out.numel() == 1 && out.dtype() == DType::f64,
              "sum_squares: the output must be one f64 element, got {}", tensor_str(out));
  TRANQ_CHECK(x.is_contiguous(), "sum_squares: needs a contiguous tensor");
  launch_sum<true>(x, out, op);
}

}  // namespace tranq::kernels::cuda
