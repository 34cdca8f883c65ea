// CUDA correct count, following kernels/cpu/accuracy.cpp: each thread scans whole rows with the
// CPU's loop (strict `>`, so the first maximum wins and a NaN never does), each block sums its
// threads' counts with block_sum and adds the total to the output slot with an integer atomic:
// exact in any order, so deterministic. The slot is zeroed on the stream first; nothing waits.
#include "kernels/accuracy.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::block_sum;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;

template <class T, class L>
__global__ void count_correct_kernel(const T* logits, const L* labels, int64_t n, int64_t c,
                                     unsigned long long* out) {
  __shared__ long long smem[kThreads];
  long long mine = 0;
  TRANQ_GRID_STRIDE_LOOP(i, n) {
    const T* row = logits + i * c;
    int64_t best = 0;
    for (int64_t k = 1; k < c; ++k)
      if (row[k] > row[best]) best = k;
    mine += best == static_cast<int64_t>(labels[i]);
  }
  const long long total = block_sum(mine, smem);  // every thread calls it: no early exit above
  if (threadIdx.x == 0 && total != 0) atomicAdd(out, static_cast<unsigned long long>(total));
}

}  // namespace

void count_correct_into(const Tensor& logits, const Tensor& labels, const Tensor& out,
                        int64_t index) {
  const char* op = "count_correct_into";
  check_count_correct_args(logits, labels, out, index);
  check_on_device(op, logits.device(), {{"labels", &labels}, {"out", &out}});
  const int64_t n = logits.size(0), c = logits.size(1);
  const int dev = logits.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  // Counts are non-negative, so the slot's bits are the same as an unsigned 64-bit counter's.
  auto* slot = reinterpret_cast<unsigned long long*>(out.data<int64_t>() + index);
  static_assert(sizeof(unsigned long long) == sizeof(int64_t), "64-bit counter");
  TRANQ_CUDA_CHECK(cudaMemsetAsync(slot, 0, sizeof(int64_t), stream));
  if (n == 0) return;
  dispatch_floating(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto launch = [&](const auto* py) {
      count_correct_kernel<<<grid_for(n), kThreads, 0, stream>>>(logits.data<T>(), py, n, c, slot);
      TRANQ_CUDA_CHECK_LAUNCH();
    };
    if (labels.dtype() == DType::i32) {
      launch(labels.data<int32_t>());
    } else {
      launch(labels.data<int64_t>());
    }
  });
}

}  // namespace tranq::kernels::cuda
