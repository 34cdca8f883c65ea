// CUDA GEMM on cuBLAS. tranq's matrices are row-major and cuBLAS's column-major: the storage of
// a row-major [r, c] matrix is the column-major [c, r] transpose, so c = op(a) op(b) is computed
// as c^T = op(b)^T op(a)^T, i.e. cuBLAS's gemm with the operands (and their flags) swapped.
//
// One cuBLAS handle per device, created on first use and kept for the process (destroying it
// at exit could run after the driver has shut down). Calls on a handle are serialised by its
// mutex, which also makes the stream and math-mode settings of each call its own.
#include <cublas_v2.h>

#include <array>
#include <memory>
#include <mutex>

#include "kernels/bf16.h"
#include "kernels/cuda/bf16.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;

constexpr int kMaxDevices = 64;

struct CublasHandle {
  std::mutex mutex;  // held while the handle is configured and used
  cublasHandle_t handle = nullptr;
};

// The handle of `device`, locked by the caller through its mutex.
CublasHandle& cublas_handle(int device) {
  TRANQ_CHECK_AS(DeviceError, device >= 0 && device < kMaxDevices,
                 "gemm: CUDA device index {} out of range", device);
  static std::array<std::unique_ptr<CublasHandle>, kMaxDevices>* handles =
      new std::array<std::unique_ptr<CublasHandle>, kMaxDevices>();
  static std::mutex create_mutex;
  std::lock_guard<std::mutex> lock(create_mutex);
  auto& slot = (*handles)[static_cast<size_t>(device)];
  if (!slot) {
    auto h = std::make_unique<CublasHandle>();
    DeviceGuard guard(device);
    TRANQ_CUBLAS_CHECK(cublasCreate(&h->handle));
    slot = std::move(h);
  }
  return *slot;
}

void check_operand(const Tensor& t, const Tensor& c, const char* arg) {
  check_defined(t, "gemm", arg);
  TRANQ_CHECK(t.dim() == 2, "gemm: expected 2-D tensors, got {} {}", arg, tensor_str(t));
  TRANQ_CHECK(t.dtype() == c.dtype(),
              "gemm: dtypes differ: {} {}, c {}; convert them to one dtype first", arg,
              tensor_str(t), tensor_str(c));
  TRANQ_CHECK(t.is_contiguous(), "gemm: needs contiguous tensors; call contiguous() first");
}

}  // namespace

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c, ComputePrecision precision) {
  const char* op = "gemm";
  check_defined(c, op, "c");
  check_operand(c, c, "c");
  check_operand(a, c, "a");
  check_operand(b, c, "b");
  check_on_device(op, c.device(), {{"a", &a}, {"b", &b}});
  const bool bf16 = precision == ComputePrecision::bf16;
  if (bf16) check_bf16_dtypes(op, {&a, &b, &c});
  const int64_t m = trans_a ? a.size(1) : a.size(0);
  const int64_t k = trans_a ? a.size(0) : a.size(1);
  const int64_t kb = trans_b ? b.size(1) : b.size(0);
  const int64_t n = trans_b ? b.size(0) : b.size(1);
  TRANQ_CHECK(k == kb, "gemm: inner dimensions differ: op(a) is [{}, {}], op(b) is [{}, {}]", m, k,
              kb, n);
  TRANQ_CHECK(c.size(0) == m && c.size(1) == n, "gemm: c is {}, expected [{}, {}]", tensor_str(c),
              m, n);
  TRANQ_CHECK(!c.storage() || (c.storage() != a.storage() && c.storage() != b.storage()),
              "gemm: c must not share memory with a or b");
  if (m == 0 || n == 0) return;
  // c = beta * c without reading a and b (BLAS semantics: their NaNs do not reach c), and
  // without relying on how cuBLAS treats an empty product or a zero alpha.
  if (k == 0 || alpha == 0.0) {
    if (beta == 0.0) {
      c.zero_();
    } else if (beta != 1.0) {
      scale(c, beta, c);
    }
    return;
  }
  // Leading dimensions of the column-major views (row lengths of the row-major matrices).
  const int im = to_int(m, op, "m"), in = to_int(n, op, "n"), ik = to_int(k, op, "k");
  const int lda = to_int(a.size(1), op, "a's row length");
  const int ldb = to_int(b.size(1), op, "b's row length");
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int dev = c.device().index;
  DeviceGuard guard(dev);
  CublasHandle& h = cublas_handle(dev);
  std::lock_guard<std::mutex> lock(h.mutex);
  TRANQ_CUBLAS_CHECK(cublasSetStream(h.handle, current_stream(dev)));
  // Default math never uses TF32 for f32 (it keeps at least the requested precision).
  TRANQ_CUBLAS_CHECK(
      cublasSetMathMode(h.handle, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (bf16) {
    // Operands rounded to bf16 (the CPU's rounding) into scratch copies; products and sums in
    // f32 on tensor cores, c in f32. Converted after taking the lock: the conversion runs on
    // the same stream as the GEMM, which orders them.
    Buffer a16 = scratch_buffer(static_cast<size_t>(a.numel()) * 2, c.device());
    Buffer b16 = scratch_buffer(static_cast<size_t>(b.numel()) * 2, c.device());
    f32_to_bf16_bits(a.data<float>(), static_cast<uint16_t*>(a16.data()), a.numel(), dev);
    f32_to_bf16_bits(b.data<float>(), static_cast<uint16_t*>(b16.data()), b.numel(), dev);
    const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
    TRANQ_CUBLAS_CHECK(cublasGemmEx(h.handle, op_b, op_a, in, im, ik, &al, b16.data(), CUDA_R_16BF,
                                    ldb, a16.data(), CUDA_R_16BF, lda, &be, c.data<float>(),
                                    CUDA_R_32F, in, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  dispatch_floating(c.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
    if constexpr (sizeof(T) == sizeof(float)) {
      TRANQ_CUBLAS_CHECK(cublasSgemm(h.handle, op_b, op_a, in, im, ik, &al, b.data<T>(), ldb,
                                     a.data<T>(), lda, &be, c.data<T>(), in));
    } else {
      TRANQ_CUBLAS_CHECK(cublasDgemm(h.handle, op_b, op_a, in, im, ik, &al, b.data<T>(), ldb,
                                     a.data<T>(), lda, &be, c.data<T>(), in));
    }
  });
}

}  // namespace tranq::kernels::cuda
