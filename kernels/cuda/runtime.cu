// CUDA device backend for core: cached device memory, host<->device copies and zero fills,
// pinned host memory.
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <vector>

#include "core/allocator.h"
#include "core/caching_allocator.h"
#include "core/error.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_allocator.cuh"
#include "kernels/cuda_runtime.h"
#include "kernels/elementwise.h"

namespace tranq::cuda {
namespace {

class CudaBackend final : public DeviceBackend {
 public:
  explicit CudaBackend(int count) {
    for (int i = 0; i < count; ++i) allocators_.emplace_back(new CachingDeviceAllocator(i));
  }
  CachingDeviceAllocator& caching(int index) {
    TRANQ_CHECK_AS(DeviceError, index >= 0 && index < static_cast<int>(allocators_.size()),
                   "no CUDA device cuda:{} (found {})", index, allocators_.size());
    return *allocators_[static_cast<size_t>(index)];
  }
  Allocator& allocator(int index) override { return caching(index); }

  // Synchronous, like a host memcpy: when it returns, dst holds the bytes (what Tensor::to and
  // copy_ promise their callers).
  void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) override {
    if (bytes == 0) return;
    if (dst_dev.is_cuda() && src_dev.is_cuda() && dst_dev.index != src_dev.index) {
      DeviceGuard guard(dst_dev.index);
      TRANQ_CUDA_CHECK(cudaMemcpyPeer(dst, dst_dev.index, src, src_dev.index, bytes));
      return;
    }
    const int index = dst_dev.is_cuda() ? dst_dev.index : src_dev.index;
    const cudaMemcpyKind kind = dst_dev.is_cpu()   ? cudaMemcpyDeviceToHost
                                : src_dev.is_cpu() ? cudaMemcpyHostToDevice
                                                   : cudaMemcpyDeviceToDevice;
    DeviceGuard guard(index);
    cudaStream_t stream = current_stream(index);
    TRANQ_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream));
    TRANQ_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  // Queued on the current stream; later work there (kernels, copies) sees the zeros.
  void fill_zero(void* dst, Device dev, size_t bytes) override {
    if (bytes == 0) return;
    DeviceGuard guard(dev.index);
    TRANQ_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, current_stream(dev.index)));
  }

 private:
  std::vector<std::unique_ptr<CachingDeviceAllocator>> allocators_;
};

// Never destroyed: device blocks and the registration outlive every static tensor, and the
// driver reclaims the memory at exit.
CudaBackend* g_backend = nullptr;

class PinnedHostAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    TRANQ_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocPortable));
    return p;
  }
  void deallocate(void* ptr, size_t) override {
    if (ptr) cudaFreeHost(ptr);  // never throw from a destructor path
  }
};

constexpr size_t kPinnedCacheBytes = size_t{1} << 30;

}  // namespace

int device_count(std::string* why) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) *why = cudaGetErrorString(err);
    cudaGetLastError();  // clear the error
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA runtime found no device";
  return n;
}

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string why;
    const int n = device_count(&why);
    if (n == 0) TRANQ_THROW(DeviceError, "no CUDA device: {}", why);
    g_backend = new CudaBackend(n);
    register_backend(DeviceType::cuda, g_backend);
    // Host tensors meant for the GPU (Tensor::empty_pinned: the loader's batches) page-locked.
    register_pinned_allocator(&pinned_allocator());
    // Gradient accumulation and the other per-backend hooks of the CUDA ops.
    ::tranq::kernels::cuda::register_cuda_ops();
  });
}

MemoryStats memory_stats(int device) {
  init();
  return g_backend->caching(device).stats();
}

void empty_cache(int device) {
  init();
  g_backend->caching(device).release_cached();
}

Allocator& pinned_allocator() {
  std::string why;
  if (device_count(&why) == 0)
    TRANQ_THROW(DeviceError, "no CUDA device: pinned_allocator: {}", why);
  static Allocator* upstream = new PinnedHostAllocator;
  static CachingAllocator* cache = new CachingAllocator(*upstream, kPinnedCacheBytes);
  return *cache;
}

void synchronize(int device) {
  init();
  DeviceGuard guard(device);
  TRANQ_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace tranq::cuda
