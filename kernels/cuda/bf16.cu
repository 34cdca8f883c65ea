// CUDA bfloat16 rounding: kernels/bf16_math.h's scalar rule per element, so the bits equal the
// CPU's (tests/test_cuda_bf16.cpp).
#include "kernels/bf16.h"
#include "kernels/bf16_math.h"
#include "kernels/cuda/bf16.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;

__global__ void round_kernel(const float* x, float* y, int64_t n) {
  TRANQ_GRID_STRIDE_LOOP(i, n) y[i] = ::tranq::kernels::bf16::round(x[i]);
}

__global__ void to_bits_kernel(const float* x, uint16_t* y, int64_t n) {
  TRANQ_GRID_STRIDE_LOOP(i, n) {
    y[i] = ::tranq::kernels::bf16::round_bits(::tranq::kernels::bf16::float_bits(x[i]));
  }
}

}  // namespace

void round_to_bf16(const Tensor& x, const Tensor& out) {
  check_round_to_bf16_args(x, out);
  const char* op = "round_to_bf16";
  check_on_device(op, x.device(), {{"out", &out}});
  const int64_t n = x.numel();
  if (n == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  round_kernel<<<grid_for(n), kThreads, 0, current_stream(device)>>>(x.data<float>(),
                                                                     out.data<float>(), n);
  TRANQ_CUDA_CHECK_LAUNCH();
}

void f32_to_bf16_bits(const float* src, uint16_t* dst, int64_t n, int device) {
  if (n == 0) return;
  DeviceGuard guard(device);
  to_bits_kernel<<<grid_for(n), kThreads, 0, current_stream(device)>>>(src, dst, n);
  TRANQ_CUDA_CHECK_LAUNCH();
}

}  // namespace tranq::kernels::cuda
