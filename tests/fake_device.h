#pragma once
// A stand-in device backend whose "device memory" is host memory, for tests of device copies
// and moves on machines without a GPU: registered as the CUDA backend when no real one works.
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/allocator.h"
#include "kernels/cuda_runtime.h"

namespace tranq::test {

class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override { return bytes ? std::malloc(bytes) : nullptr; }
  void deallocate(void* p, size_t) override { std::free(p); }
};

// Copies are plain byte copies, as a backend's are; `fills` counts fill_pattern calls.
class FakeDevice final : public DeviceBackend {
 public:
  Allocator& allocator(int) override { return alloc_; }
  void copy(void* dst, Device, const void* src, Device, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void fill_zero(void* dst, Device, size_t bytes) override {
    if (bytes) std::memset(dst, 0, bytes);
  }
  void fill_pattern(void* dst, Device, const void* pattern, size_t size, size_t count) override {
    for (size_t i = 0; i < count; ++i)
      std::memcpy(static_cast<char*>(dst) + i * size, pattern, size);
    ++fills;
  }
  int fills = 0;

 private:
  HostAllocator alloc_;
};

inline FakeDevice& fake_device() {
  static FakeDevice d;
  return d;
}

// Registers fake_device() as the CUDA backend unless a real CUDA device works, in which case
// the real backend is registered (cuda::init: nothing else in a test process may have done it);
// returns whether the fake one was.
inline bool use_fake_cuda_unless_real() {
  std::string why;
  if (cuda::device_count(&why) > 0) {
    cuda::init();
    return false;
  }
  register_backend(DeviceType::cuda, &fake_device());
  return true;
}

}  // namespace tranq::test
