// CUDA device backend for core: device memory, host<->device copies and zero fills.
#include <cuda_runtime.h>

#include <mutex>

#include "core/allocator.h"
#include "core/autograd.h"
#include "core/error.h"
#include "kernels/cuda_runtime.h"

#define TRANQ_CUDA_CHECK(call)                                                                \
  do {                                                                                        \
    cudaError_t err_ = (call);                                                                \
    if (err_ != cudaSuccess) {                                                                \
      throw ::tranq::DeviceError(fmt::format("{} failed at {}:{}: {}", #call, __FILE__,      \
                                             __LINE__, cudaGetErrorString(err_)));            \
    }                                                                                         \
  } while (0)

namespace tranq::cuda {
namespace {

class DeviceAllocator final : public Allocator {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    TRANQ_CUDA_CHECK(cudaSetDevice(device_));
    TRANQ_CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }
  void deallocate(void* ptr, size_t) override {
    if (ptr) cudaFree(ptr);  // never throw from a destructor path
  }

 private:
  int device_;
};

class CudaBackend final : public DeviceBackend {
 public:
  explicit CudaBackend(int count) {
    for (int i = 0; i < count; ++i) allocators_.emplace_back(new DeviceAllocator(i));
  }
  Allocator& allocator(int index) override {
    TRANQ_CHECK_AS(DeviceError, index >= 0 && index < static_cast<int>(allocators_.size()),
                   "no CUDA device cuda:{} (found {})", index, allocators_.size());
    return *allocators_[static_cast<size_t>(index)];
  }
  void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) override {
    if (bytes == 0) return;
    cudaMemcpyKind kind = dst_dev.is_cpu() ? cudaMemcpyDeviceToHost
                          : src_dev.is_cpu() ? cudaMemcpyHostToDevice
                                             : cudaMemcpyDeviceToDevice;
    TRANQ_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
  }
  void fill_zero(void* dst, Device dev, size_t bytes) override {
    if (bytes) TRANQ_CUDA_CHECK(cudaMemset(dst, 0, bytes));
  }

 private:
  std::vector<std::unique_ptr<DeviceAllocator>> allocators_;
};

}  // namespace

int device_count(std::string* why) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) *why = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error
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
    static CudaBackend backend(n);
    register_backend(DeviceType::cuda, &backend);
  });
}

}  // namespace tranq::cuda
