// CUDA softmax cross-entropy, following kernels/cpu/cross_entropy.cpp. Forward: one block per
// row finds the row maximum, sums exp(x - max) and x in double (fixed strided split, then
// block_sum's fixed tree), writes the probabilities and the row's loss; one block then sums the
// row losses in a fixed order. Backward: elementwise, with the CPU's per-element expression
// (each operation rounded on its own) and its constants computed on the device from dloss.
// Labels are not checked on the host (no synchronisation): a label outside [0, C) makes its
// row's loss, and so the mean, NaN, and the backward gives that row no label term.
// Deterministic; the forward agrees with the CPU to rounding (other summation order, and the
// device's exp and log are within an ulp of the host's), the backward bit for bit when the host
// compiler does not fuse gs * p - off.
#include "kernels/cross_entropy.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"

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

void check_common(const Tensor& mat, const Tensor& labels, double eps, const char* op,
                  const char* arg) {
  check_defined(mat, op, arg);
  check_defined(labels, op, "labels");
  TRANQ_CHECK(mat.dim() == 2 && mat.is_contiguous(), "{}: {} must be a contiguous [N,C], got {}",
              op, arg, tensor_str(mat));
  TRANQ_CHECK(labels.dim() == 1 && labels.size(0) == mat.size(0) && labels.is_contiguous() &&
                  (labels.dtype() == DType::i32 || labels.dtype() == DType::i64),
              "{}: labels must be a contiguous i32 or i64 [{}], got {}", op, mat.size(0),
              tensor_str(labels));
  TRANQ_CHECK(eps >= 0.0 && eps <= 1.0, "{}: label_smoothing must lie in [0, 1], got {}", op, eps);
  check_on_device(op, mat.device(), {{"labels", &labels}});
  // The labels' values are not checked here: that would need a host copy, which waits for the
  // stream. Callers validate them (ops::cross_entropy does); the kernels stay memory-safe on a
  // bad label (see kernels/cross_entropy.h).
}

// Calls f(p) with p the labels' device data as int32_t* or int64_t*.
template <class F>
void with_labels(const Tensor& labels, F&& f) {
  if (labels.dtype() == DType::i32) {
    f(labels.data<int32_t>());
  } else {
    f(labels.data<int64_t>());
  }
}

template <class T, class L>
__global__ void forward_rows_kernel(const T* logits, const L* labels, T* probs, int64_t c,
                                    double eps, double* row_loss) {
  __shared__ double smem[kThreads];
  const int64_t i = blockIdx.x;
  const T* x = logits + i * c;
  T* p = probs + i * c;
  double mx = static_cast<double>(x[0]);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const double v = static_cast<double>(x[j]);
    if (v > mx) mx = v;
  }
  mx = block_max(mx, smem);
  double se = 0, sx = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const double v = static_cast<double>(x[j]);
    se += exp(v - mx);
    sx += v;
  }
  se = block_sum(se, smem);
  sx = block_sum(sx, smem);
  const double inv = 1.0 / se;
  // As the CPU: the exponential rounded to T first, then normalised in double.
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const T e = static_cast<T>(exp(static_cast<double>(x[j]) - mx));
    p[j] = static_cast<T>(mul_rn(static_cast<double>(e), inv));
  }
  if (threadIdx.x == 0) {
    const int64_t y = static_cast<int64_t>(labels[i]);
    if (y < 0 || y >= c) {  // an invalid label: no read outside the row, a NaN loss instead
      row_loss[i] = __longlong_as_double(0x7ff8000000000000LL);
      return;
    }
    const double lse = add_rn(mx, log(se));
    const double nll = lse - static_cast<double>(x[y]);
    const double smooth = lse - sx / static_cast<double>(c);  // mean_c(-log p_c)
    row_loss[i] = add_rn(mul_rn(1.0 - eps, nll), mul_rn(eps, smooth));
  }
}

template <class T>
__global__ void mean_loss_kernel(const double* row_loss, int64_t n, T* loss) {
  __shared__ double smem[kThreads];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += row_loss[i];
  const double total = block_sum(s, smem);
  if (threadIdx.x == 0) *loss = static_cast<T>(total / static_cast<double>(n));
}

template <class T, class L>
__global__ void backward_kernel(const T* probs, const L* labels, const T* dloss, T* dlogits,
                                int64_t n, int64_t c, double eps) {
  const double g = static_cast<double>(*dloss) / static_cast<double>(n);
  const T gs = static_cast<T>(g);
  const T off = static_cast<T>(g * eps / static_cast<double>(c));  // g * smoothed target
  const T on = static_cast<T>(g * (1.0 - eps));                    // extra for the label
  const int64_t total = n * c;
  TRANQ_GRID_STRIDE_LOOP(k, total) {
    const int64_t i = k / c, j = k - i * c;
    T d = add_rn(mul_rn(gs, probs[k]), -off);
    if (j == static_cast<int64_t>(labels[i])) d = add_rn(d, -on);
    dlogits[k] = d;
  }
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, double label_smoothing,
                           const Tensor& loss, const Tensor& probs) {
  const char* op = "cross_entropy_forward";
  check_common(logits, labels, label_smoothing, op, "logits");
  const int64_t n = logits.size(0), c = logits.size(1);
  TRANQ_CHECK(n > 0 && c > 0, "{}: empty logits {}", op, tensor_str(logits));
  check_defined(loss, op, "loss");
  check_defined(probs, op, "probs");
  TRANQ_CHECK(loss.numel() == 1 && loss.dtype() == logits.dtype(),
              "{}: loss must be a scalar of the logits' dtype, got {}", op, tensor_str(loss));
  check_same_shape(logits, probs, op);
  TRANQ_CHECK(probs.dtype() == logits.dtype() && probs.is_contiguous(),
              "{}: probs must be a contiguous {}, got {}", op, dtype_name(logits.dtype()),
              tensor_str(probs));
  check_on_device(op, logits.device(), {{"loss", &loss}, {"probs", &probs}});
  const int dev = logits.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  Buffer rows = scratch_buffer(static_cast<size_t>(n) * sizeof(double), logits.device());
  auto* row_loss = static_cast<double*>(rows.data());
  dispatch_floating(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    with_labels(labels, [&](auto* py) {
      forward_rows_kernel<<<grid_exact(n, op), kThreads, 0, stream>>>(
          logits.data<T>(), py, probs.data<T>(), c, label_smoothing, row_loss);
      TRANQ_CUDA_CHECK_LAUNCH();
    });
    mean_loss_kernel<T><<<1, kThreads, 0, stream>>>(row_loss, n, loss.data<T>());
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy_backward(const Tensor& probs, const Tensor& labels, double label_smoothing,
                            const Tensor& dloss, const Tensor& dlogits) {
  const char* op = "cross_entropy_backward";
  check_common(probs, labels, label_smoothing, op, "probs");
  check_defined(dloss, op, "dloss");
  check_defined(dlogits, op, "dlogits");
  check_same_shape(probs, dlogits, op);
  TRANQ_CHECK(dlogits.dtype() == probs.dtype() && dlogits.is_contiguous() && dloss.numel() == 1 &&
                  dloss.dtype() == probs.dtype(),
              "{}: expected contiguous dlogits and a scalar dloss of dtype {}, got {} and {}", op,
              dtype_name(probs.dtype()), tensor_str(dlogits), tensor_str(dloss));
  check_on_device(op, probs.device(), {{"dloss", &dloss}, {"dlogits", &dlogits}});
  const int64_t n = probs.size(0), c = probs.size(1);
  if (n * c == 0) return;
  const int dev = probs.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  dispatch_floating(probs.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    with_labels(labels, [&](auto* py) {
      backward_kernel<<<grid_for(n * c), kThreads, 0, stream>>>(
          probs.data<T>(), py, dloss.data<T>(), dlogits.data<T>(), n, c, label_smoothing);
      TRANQ_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace tranq::kernels::cuda
