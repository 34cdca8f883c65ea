#include "core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/caching_allocator.h"
#include "core/error.h"

namespace tranq {
namespace {

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) TRANQ_THROW(Error, "out of host memory allocating {} bytes", bytes);
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
};

// Host blocks kept for reuse, at most this many bytes. Sanitizer builds cache nothing, so
// every use after free is caught.
#ifdef TRANQ_SANITIZE_BUILD
constexpr size_t kCpuCacheBytes = 0;
#else
constexpr size_t kCpuCacheBytes = size_t{2} << 30;
#endif

class CpuBackend final : public DeviceBackend {
 public:
  Allocator& allocator(int) override { return cache_; }
  void copy(void* dst, Device, const void* src, Device, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void fill_zero(void* dst, Device, size_t bytes) override {
    if (bytes) std::memset(dst, 0, bytes);
  }
  void fill_pattern(void* dst, Device, const void* pattern, size_t size, size_t count) override {
    auto* d = static_cast<unsigned char*>(dst);
    for (size_t i = 0; i < count; ++i) std::memcpy(d + i * size, pattern, size);
  }
  CachingAllocator& cache() { return cache_; }

 private:
  CpuAllocator alloc_;
  CachingAllocator cache_{alloc_, kCpuCacheBytes};
};

CpuBackend& cpu_backend() {
  static CpuBackend cpu;
  return cpu;
}

DeviceBackend*& slot(DeviceType t) {
  static DeviceBackend* backends[2] = {nullptr, nullptr};
  return backends[static_cast<int>(t)];
}

}  // namespace

Allocator& cpu_allocator() {
  return backend_for(DeviceType::cpu).allocator(0);
}

CachingAllocator::Stats cpu_allocator_stats() {
  return cpu_backend().cache().stats();
}

void register_backend(DeviceType type, DeviceBackend* backend) {
  slot(type) = backend;
}

namespace {
std::atomic<Allocator*> pinned_slot{nullptr};
}  // namespace

void register_pinned_allocator(Allocator* allocator) {
  pinned_slot.store(allocator);
}

Allocator& pinned_allocator() {
  Allocator* a = pinned_slot.load();
  return a ? *a : cpu_allocator();
}

DeviceBackend& backend_for(DeviceType type) {
  if (type == DeviceType::cpu) return cpu_backend();
  DeviceBackend* b = slot(type);
  if (!b) {
    TRANQ_THROW(DeviceError,
                "no CUDA device: this build of tranq has no CUDA backend or it found no GPU; "
                "use --device cpu");
  }
  return *b;
}

Buffer::Buffer(size_t bytes, Device device)
    : bytes_(bytes),
      device_(device),
      allocator_(&backend_for(device.type).allocator(device.index)) {
  data_ = allocator_->allocate(bytes);
}

Buffer::Buffer(size_t bytes, Device device, Allocator& allocator)
    : bytes_(bytes), device_(device), allocator_(&allocator) {
  data_ = allocator_->allocate(bytes);
}

Buffer::~Buffer() {
  release();
}

Buffer::Buffer(Buffer&& o) noexcept
    : data_(o.data_),
      bytes_(o.bytes_),
      device_(o.device_),
      allocator_(o.allocator_),
      version_(o.version()) {
  o.data_ = nullptr;
  o.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = o.data_;
    bytes_ = o.bytes_;
    device_ = o.device_;
    allocator_ = o.allocator_;
    version_.store(o.version(), std::memory_order_relaxed);
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void Buffer::release() {
  if (data_ && allocator_) allocator_->deallocate(data_, bytes_);
  data_ = nullptr;
}

}  // namespace tranq
