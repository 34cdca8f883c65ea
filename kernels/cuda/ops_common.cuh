#pragma once
// What the CUDA versions of the network ops (elementwise, gemm, conv2d, batch norm, pooling,
// cross-entropy, dropout) share beyond kernels/cuda/common.cuh: argument checks, scratch device
// memory and a deterministic block maximum.
//
// Only kernels/cuda/*.cu include this.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "core/allocator.h"
#include "core/tensor.h"
#include "kernels/cuda/common.cuh"

namespace tranq::kernels::cuda {

// Device memory for the duration of one op: from the device's caching allocator, which ties a
// freed block to the stream, so a later op on the same stream may reuse it safely.
inline Buffer scratch_buffer(size_t bytes, Device dev) {
  return Buffer(bytes, dev);
}

// `t` must be contiguous (the CUDA kernels index flat arrays).
inline void check_contiguous(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined()) return;
  TRANQ_CHECK(t.is_contiguous(), "{}: '{}' must be contiguous, got a strided {}; call contiguous()",
              op, arg, tensor_str(t));
}

// cuDNN and some launch arithmetic take int sizes.
inline int to_int(int64_t v, const char* op, const char* what) {
  TRANQ_CHECK_AS(DeviceError, v >= 0 && v <= std::numeric_limits<int>::max(),
                 "{}: {} = {} does not fit the CUDA library's int sizes", op, what, v);
  return static_cast<int>(v);
}

}  // namespace tranq::kernels::cuda

#if defined(__CUDACC__)
namespace tranq::kernels::cuda {

// Maximum of v over the block, returned to every thread (same contract as block_sum: every
// thread calls it, smem holds blockDim.x values, blockDim.x a power of two). NaN-free inputs
// give the exact maximum whatever the order; a NaN may or may not win, as with fmax.
template <class T>
__device__ T block_max(T v, T* smem) {
  const unsigned tid = threadIdx.x;
  smem[tid] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) {
      const T o = smem[tid + s];
      if (o > smem[tid]) smem[tid] = o;
    }
    __syncthreads();
  }
  const T total = smem[0];
  __syncthreads();
  return total;
}

}  // namespace tranq::kernels::cuda
#endif
