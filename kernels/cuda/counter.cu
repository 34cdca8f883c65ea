// CUDA counters: one grid-stride kernel on the current stream.
#include "kernels/counter.h"
#include "kernels/cuda/common.cuh"

namespace tranq::kernels::cuda {
namespace {

__global__ void add_to_counter_kernel(long long* p, int64_t n, long long by) {
  TRANQ_GRID_STRIDE_LOOP(i, n) p[i] += by;
}

}  // namespace

void add_to_counter(const Tensor& t, int64_t by) {
  ::tranq::cuda::check_on_device("add_to_counter", t.device(), {});
  const int64_t n = t.numel();
  if (n == 0) return;
  ::tranq::cuda::DeviceGuard guard(t.device().index);
  add_to_counter_kernel<<<::tranq::cuda::grid_for(n), ::tranq::cuda::kThreads, 0,
                          ::tranq::cuda::current_stream(t.device().index)>>>(
      reinterpret_cast<long long*>(t.data<int64_t>()), n, static_cast<long long>(by));
  TRANQ_CUDA_CHECK_LAUNCH();
}

}  // namespace tranq::kernels::cuda
