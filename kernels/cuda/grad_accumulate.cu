// The CUDA backend's gradient accumulator (dst += src, core/autograd.h) and the registration of
// the hooks core calls into the CUDA ops. One add per element, correctly rounded: the CPU's
// accumulator's bits.
#include <mutex>

#include "core/autograd.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::add_rn;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;

template <class T>
__global__ void accumulate_kernel(T* dst, const T* src, int64_t n) {
  TRANQ_GRID_STRIDE_LOOP(i, n) dst[i] = add_rn(dst[i], src[i]);
}

void accumulate_hook(const Tensor& dst, const Tensor& src) {
  accumulate(dst, src);
}

}  // namespace

void accumulate(const Tensor& dst, const Tensor& src) {
  const char* op = "accumulate_grad";
  check_defined(dst, op, "dst");
  check_defined(src, op, "src");
  check_same_shape(dst, src, op);
  TRANQ_CHECK(dst.dtype() == src.dtype(), "{}: dtypes differ: {} and {}", op, tensor_str(dst),
              tensor_str(src));
  // Gradients the ops return are contiguous; a strided one cannot be copied on the device yet
  // (Tensor::contiguous of a CUDA tensor needs a device strided copy).
  TRANQ_CHECK(dst.is_contiguous() && src.is_contiguous(),
              "{}: the CUDA accumulator needs contiguous gradients, got {} += {}", op,
              tensor_str(dst), tensor_str(src));
  check_on_device(op, dst.device(), {{"src", &src}});
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int dev = dst.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  dispatch_floating(dst.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    accumulate_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(dst.data<T>(), src.data<T>(), n);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void register_cuda_ops() {
  static std::once_flag once;
  std::call_once(once, [] { register_grad_accumulator(DeviceType::cuda, &accumulate_hook); });
}

}  // namespace tranq::kernels::cuda
