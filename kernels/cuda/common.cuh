#pragma once
// What every CUDA file of the backend shares: error macros that turn a failed runtime, cuBLAS or
// cuDNN call into tranq::DeviceError (call text, file:line, the library's message), the device
// guard, the current stream, launch-grid helpers, deterministic block reductions and arithmetic
// that the compiler may not contract into FMAs (so device results can equal the CPU's).
//
// Only kernels/cuda/*.cu and *.cuh include this (CUDA headers stay out of public headers).
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <utility>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda_runtime.h"

namespace tranq::cuda {

// Throws DeviceError("<lib> call '<call>' failed at file:line: <message> (code N)").
[[noreturn]] inline void throw_call_error(const char* lib, const char* call, const char* file,
                                          int line, long long code, const char* message) {
  throw DeviceError(fmt::format("{} call '{}' failed at {}:{}: {} (code {})", lib, call, file, line,
                                message ? message : "unknown error", code));
}

}  // namespace tranq::cuda

// The macros name library functions only where they are expanded, so a file that uses
// TRANQ_CUBLAS_CHECK includes <cublas_v2.h> itself (and TRANQ_CUDNN_CHECK <cudnn.h>, with
// CUDNN linked). This header depends on the CUDA runtime alone.
#define TRANQ_CUDA_CHECK(call)                                                      \
  do {                                                                              \
    const cudaError_t tranq_err_ = (call);                                          \
    if (tranq_err_ != cudaSuccess) {                                                \
      cudaGetLastError(); /* clear a non-sticky error so later calls start clean */ \
      ::tranq::cuda::throw_call_error("CUDA", #call, __FILE__, __LINE__,            \
                                      static_cast<long long>(tranq_err_),           \
                                      cudaGetErrorString(tranq_err_));              \
    }                                                                               \
  } while (0)

#define TRANQ_CUBLAS_CHECK(call)                                           \
  do {                                                                     \
    const cublasStatus_t tranq_st_ = (call);                               \
    if (tranq_st_ != CUBLAS_STATUS_SUCCESS) {                              \
      ::tranq::cuda::throw_call_error("cuBLAS", #call, __FILE__, __LINE__, \
                                      static_cast<long long>(tranq_st_),   \
                                      cublasGetStatusString(tranq_st_));   \
    }                                                                      \
  } while (0)

#define TRANQ_CUDNN_CHECK(call)                                           \
  do {                                                                    \
    const cudnnStatus_t tranq_st_ = (call);                               \
    if (tranq_st_ != CUDNN_STATUS_SUCCESS) {                              \
      ::tranq::cuda::throw_call_error("cuDNN", #call, __FILE__, __LINE__, \
                                      static_cast<long long>(tranq_st_),  \
                                      cudnnGetErrorString(tranq_st_));    \
    }                                                                     \
  } while (0)

// After a <<<...>>> launch: a bad configuration shows up here, not at the next call.
#define TRANQ_CUDA_CHECK_LAUNCH() TRANQ_CUDA_CHECK(cudaGetLastError())

namespace tranq::cuda {

// The stream the backend's work on `device` goes to: the thread's current stream of that device
// (kernels/cuda_runtime.h StreamGuard; the legacy default stream unless a guard is active).
// Every launcher passes it to its kernels, copies and memsets, and the caching allocator tags
// blocks with it.
inline cudaStream_t current_stream(int device) {
  return static_cast<cudaStream_t>(current_stream_handle(device));
}

// Counts one host wait for host_wait_count(); call it beside every synchronising call.
void note_host_wait();

// Makes `device` current for the guard's lifetime (kernels run on the tensors' GPU).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    TRANQ_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) TRANQ_CUDA_CHECK(cudaSetDevice(device));
    current_ = device;
  }
  ~DeviceGuard() {
    if (previous_ != current_) cudaSetDevice(previous_);  // never throw from a destructor
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0, current_ = 0;
};

// Threads per block of every kernel here. A power of two: block_sum's tree relies on it.
constexpr int kThreads = 256;
// Grid-stride loops never need more blocks than this to keep an H200 busy.
constexpr int64_t kMaxGridBlocks = int64_t{1} << 16;

// Blocks for a grid-stride loop over n items (at least 1, so a launch is always valid).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > kMaxGridBlocks) b = kMaxGridBlocks;
  return static_cast<unsigned>(b);
}

// Blocks for a one-block-per-item launch (pieces of quant_piece()); gridDim.x is 31 bits.
inline unsigned grid_exact(int64_t blocks, const char* op) {
  TRANQ_CHECK_AS(DeviceError, blocks >= 1 && blocks <= int64_t{0x7fffffff},
                 "{}: {} blocks do not fit one CUDA grid", op, blocks);
  return static_cast<unsigned>(blocks);
}

// `dev` must be a CUDA device and every defined tensor among `ts` on it (a host pointer handed
// to a kernel would read garbage or fault). ValueError, like the other argument checks.
inline void check_on_device(const char* op, Device dev,
                            std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  TRANQ_CHECK(dev.is_cuda(), "{}: the CUDA version got tensors on {}", op, dev.str());
  for (const auto& [name, t] : ts) {
    if (!t->defined()) continue;
    TRANQ_CHECK(t->device() == dev, "{}: '{}' is {}, expected it on {}", op, name, tensor_str(*t),
                dev.str());
  }
}

}  // namespace tranq::cuda

#if defined(__CUDACC__)
namespace tranq::cuda {

// Correctly rounded single operations that are never fused into an FMA, so a device
// expression rounds exactly like the same expression written op by op on the host.
__device__ inline float mul_rn(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ inline double mul_rn(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ inline float add_rn(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ inline double add_rn(double a, double b) {
  return __dadd_rn(a, b);
}
__device__ inline float div_rn(float a, float b) {
  return __fdiv_rn(a, b);
}
__device__ inline double div_rn(double a, double b) {
  return __ddiv_rn(a, b);
}
__device__ inline float sqrt_rn(float a) {
  return __fsqrt_rn(a);
}
__device__ inline double sqrt_rn(double a) {
  return __dsqrt_rn(a);
}

// Sum of v over the block, returned to every thread. smem holds blockDim.x values and
// blockDim.x is a power of two. The tree's order depends only on thread indices, so a float
// sum is the same bits on every run. Every thread of the block must call it (no early exits).
template <class T>
__device__ T block_sum(T v, T* smem) {
  const unsigned tid = threadIdx.x;
  smem[tid] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) smem[tid] = smem[tid] + smem[tid + s];
    __syncthreads();
  }
  const T total = smem[0];
  __syncthreads();  // smem may be reused by the caller right away
  return total;
}

// i = global thread index, stepping by the grid's size (int64: tensors may exceed 2^31).
#define TRANQ_GRID_STRIDE_LOOP(i, n)                                                     \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace tranq::cuda
#endif
