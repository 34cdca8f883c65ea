#include "core/allocator.h"

#include <cstdlib>
#include <cstring>
#include <new>

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

class CpuBackend final : public DeviceBackend {
 public:
  Allocator& allocator(int) override { return alloc_; }
  void copy(void* dst, Device, const void* src, Device, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void fill_zero(void* dst, Device, size_t bytes) override {
    if (bytes) std::memset(dst, 0, bytes);
  }

 private:
  CpuAllocator alloc_;
};

DeviceBackend*& slot(DeviceType t) {
  static DeviceBackend* backends[2] = {nullptr, nullptr};
  return backends[static_cast<int>(t)];
}

}  // namespace

Allocator& cpu_allocator() { return backend_for(DeviceType::cpu).allocator(0); }

void register_backend(DeviceType type, DeviceBackend* backend) { slot(type) = backend; }

DeviceBackend& backend_for(DeviceType type) {
  if (type == DeviceType::cpu) {
    static CpuBackend cpu;
    return cpu;
  }
  DeviceBackend* b = slot(type);
  if (!b) {
    TRANQ_THROW(DeviceError,
                "no CUDA device: this build of tranq has no CUDA backend or it found no GPU; "
                "use --device cpu");
  }
  return *b;
}

Buffer::Buffer(size_t bytes, Device device)
    : bytes_(bytes), device_(device), allocator_(&backend_for(device.type).allocator(device.index)) {
  data_ = allocator_->allocate(bytes);
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& o) noexcept
    : data_(o.data_), bytes_(o.bytes_), device_(o.device_), allocator_(o.allocator_) {
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
