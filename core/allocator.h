#pragma once
// Memory of one device behind a two-method interface, so a caching allocator can replace the
// plain one without touching tensors.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace tranq {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
};

// What core needs of a device beyond memory: byte copies and zero fills. The CPU backend is
// built in; the CUDA backend registers itself when it is compiled in.
class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual Allocator& allocator(int index) = 0;
  // Copies between this device and the host or itself; src and dst name their devices.
  virtual void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) = 0;
  virtual void fill_zero(void* dst, Device dev, size_t bytes) = 0;
  // Writes `count` copies of the `size`-byte pattern (1, 2, 4 or 8 bytes: one element) from
  // dst on; queued like fill_zero, no host wait (the pattern is passed by value).
  virtual void fill_pattern(void* dst, Device dev, const void* pattern, size_t size,
                            size_t count) = 0;
  // Host to device without waiting: the copy is queued where later work on dst_dev sees its
  // result, and src's host memory is held back from reuse until the copy has read it, so the
  // caller may free it at once. Only page-locked memory from pinned_allocator() can be copied
  // so; the default (and any other src) copies synchronously, as copy() does.
  virtual void copy_from_pinned_async(void* dst, Device dst_dev, const void* src, size_t bytes) {
    copy(dst, dst_dev, src, Device::cpu(), bytes);
  }
};

void register_backend(DeviceType type, DeviceBackend* backend);
// Throws DeviceError when the device type has no backend in this build.
DeviceBackend& backend_for(DeviceType type);

// 64-byte aligned host memory.
Allocator& cpu_allocator();

// Page-locked host memory, for buffers copied to a GPU (the loader's batches): the CUDA
// backend registers its allocator when initialised; until then this is cpu_allocator().
void register_pinned_allocator(Allocator* allocator);
Allocator& pinned_allocator();

// Move-only RAII owner of one allocation on one device.
class Buffer {
 public:
  Buffer() = default;
  Buffer(size_t bytes, Device device);
  // Memory from a given allocator of that device (e.g. pinned_allocator() for the host).
  Buffer(size_t bytes, Device device, Allocator& allocator);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  // Counts the in-place writes made to this memory (Tensor::copy_, fill_, zero_, optimizer
  // steps, a kernel writing over its own input), so autograd can tell that a tensor an op saved
  // for its backward was changed since (PyTorch's version counter). A kernel writing a fresh
  // output does not count.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() const { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_{};
  Allocator* allocator_ = nullptr;
  mutable std::atomic<uint64_t> version_{0};
};

}  // namespace tranq
