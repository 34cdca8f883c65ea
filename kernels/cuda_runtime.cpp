// The parts of kernels/cuda_runtime.h every build has (the size bins, the statistics'
// bookkeeping), and the fallback used when the CUDA backend is not compiled in
// (kernels/cuda/runtime.cu implements the rest).
#include "kernels/cuda_runtime.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "tranq/config.h"

namespace tranq::cuda {

size_t device_block_size(size_t bytes) {
  constexpr size_t kSmallLimit = size_t{1} << 20;
  constexpr size_t kSmallStep = 512;
  if (bytes == 0) return 0;
  if (bytes <= kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  size_t p = kSmallLimit;  // the largest power of two <= bytes
  while (p <= bytes / 2) p *= 2;
  const size_t step = p / 4;
  if (bytes > SIZE_MAX - step) return bytes;  // no bin that large; cudaMalloc will refuse it
  return (bytes + step - 1) / step * step;
}

void count_allocation(MemoryStats& s, size_t requested, size_t block) {
  s.in_use_bytes += block;
  s.requested_bytes += requested;
  s.peak_in_use_bytes = std::max(s.peak_in_use_bytes, s.in_use_bytes);
  s.peak_requested_bytes = std::max(s.peak_requested_bytes, s.requested_bytes);
  s.peak_reserved_bytes = std::max(s.peak_reserved_bytes, s.in_use_bytes + s.cached_bytes);
}

void count_release(MemoryStats& s, size_t requested, size_t block) {
  s.in_use_bytes -= block;
  s.requested_bytes -= requested;
}

}  // namespace tranq::cuda

#if !TRANQ_WITH_CUDA
namespace tranq::cuda {
namespace {
constexpr const char* kNoBackend =
    "no CUDA backend in this build (configured with TRANQ_CUDA=OFF or no nvcc)";
[[noreturn]] void no_backend(const char* what) {
  TRANQ_THROW(DeviceError, "no CUDA device: {}: {}", what, kNoBackend);
}
}  // namespace

int device_count(std::string* why) {
  if (why) *why = kNoBackend;
  return 0;
}
bool has_cudnn() {
  return false;
}
void init() {
  no_backend("init");
}
MemoryStats memory_stats(int) {
  no_backend("memory_stats");
}
void empty_cache(int) {
  no_backend("empty_cache");
}
Allocator& pinned_allocator() {
  no_backend("pinned_allocator");
}
void synchronize(int) {
  no_backend("synchronize");
}
Stream::Stream(int, bool) {
  no_backend("Stream");
}
Stream::~Stream() = default;
Stream::Stream(Stream&& o) noexcept = default;
Stream& Stream::operator=(Stream&& o) noexcept = default;
Stream Stream::legacy_default(int) {
  no_backend("Stream::legacy_default");
}
void Stream::synchronize() const {
  no_backend("Stream::synchronize");
}
Stream Stream::current(int) {
  no_backend("Stream::current");
}
void Stream::wait(const Stream&) const {
  no_backend("Stream::wait");
}
void Stream::wait(const Event&) const {
  no_backend("Stream::wait");
}
Event::Event(int) {
  no_backend("Event");
}
Event::~Event() = default;
Event::Event(Event&& o) noexcept = default;
Event& Event::operator=(Event&& o) noexcept = default;
void Event::record(const Stream&) {
  no_backend("Event::record");
}
StreamGuard::StreamGuard(const Stream&) : device_(0), previous_(nullptr) {
  no_backend("StreamGuard");
}
StreamGuard::~StreamGuard() = default;
void* current_stream_handle(int) {
  return nullptr;
}
uint64_t host_wait_count() {
  return 0;
}
}  // namespace tranq::cuda
#endif
