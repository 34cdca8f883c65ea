// CUDA TALR controller update: one thread per layer runs kernels/trs_math.h's
// trs_layer_update on its row of the counts table and its state, on the current stream, with
// no host round trip. Each layer's bad_step entry is written by its own thread only.
// The formula's multiply-adds are explicit __fma_rn calls there and no product meets an
// addition, so nvcc's contraction (--fmad) has nothing to fuse: the kernel computes the bits of
// TrsController::update and of the CPU kernel.
#include "kernels/cuda/common.cuh"
#include "kernels/transition_stats.h"
#include "kernels/trs_update.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;

__global__ void trs_update_kernel(const long long* counts, int64_t layers, TrsStep p, double* K,
                                  double* s, double* U, double* k, long long* bad) {
  TRANQ_GRID_STRIDE_LOOP(i, layers) {
    const long long* row = counts + i * kCountColumns;
    if (!trs_layer_update(row[kCountNumel], row[kCountChanged], p, K + i, s + i, U + i, k + i) &&
        bad[i] == 0)
      bad[i] = p.step + 1;
  }
}

}  // namespace

void trs_update(const Tensor& counts, const TrsStep& p, const Tensor& K, const Tensor& s,
                const Tensor& U, const Tensor& k, const Tensor& bad_step) {
  const char* op = "trs_update";
  check_trs_update_args(op, counts, K, s, U, k, bad_step);
  check_on_device(op, counts.device(),
                  {{"K", &K}, {"s", &s}, {"U", &U}, {"k", &k}, {"bad_step", &bad_step}});
  const int64_t layers = counts.size(0);
  if (layers == 0) return;
  const int index = counts.device().index;
  DeviceGuard guard(index);
  trs_update_kernel<<<grid_for(layers), kThreads, 0, current_stream(index)>>>(
      reinterpret_cast<const long long*>(counts.data<int64_t>()), layers, p, K.data<double>(),
      s.data<double>(), U.data<double>(), k.data<double>(),
      reinterpret_cast<long long*>(bad_step.data<int64_t>()));
  TRANQ_CUDA_CHECK_LAUNCH();
}

}  // namespace tranq::kernels::cuda
