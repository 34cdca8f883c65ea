// Caching device allocator: size bins, free lists per stream, statistics, one retry after
// returning the cache to the driver when cudaMalloc runs out of memory.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_allocator.cuh"

namespace tranq::cuda {

namespace {
bool caching_disabled() {
  const char* v = std::getenv("TRANQ_CUDA_NO_CACHING");
  return v != nullptr && std::strcmp(v, "") != 0 && std::strcmp(v, "0") != 0;
}
}  // namespace

CachingDeviceAllocator::CachingDeviceAllocator(int device)
    : device_(device), caching_(!caching_disabled()) {}

void* CachingDeviceAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  // Without the cache every block has its exact size, so an access past a tensor's end leaves
  // the allocation, where compute-sanitizer's memcheck can see it.
  const size_t size = caching_ ? device_block_size(bytes) : bytes;
  cudaStream_t stream = current_stream(device_);
  const BinKey key{reinterpret_cast<uintptr_t>(stream), size};
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  auto it = free_.find(key);
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= size;
    ++stats_.hits;
  } else {
    // cudaMalloc under the lock: it is slow anyway, and a retry must not race other threads
    // refilling the cache it just emptied.
    p = malloc_or_retry(size);
    ++stats_.misses;
  }
  live_.emplace(p, Block{size, bytes, stream});
  count_allocation(stats_, bytes, size);
  return p;
}

void CachingDeviceAllocator::deallocate(void* ptr, size_t) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  // Not from this allocator: nothing sensible to do on a destructor path, so leave it alone.
  if (it == live_.end()) return;
  const Block b = it->second;
  live_.erase(it);
  count_release(stats_, b.requested, b.size);
  if (!caching_) {
    // cudaFree waits for the device, so kernels still reading the block finish first.
    DeviceGuard guard(device_);
    cudaFree(ptr);
    note_host_wait();
    return;
  }
  free_[BinKey{reinterpret_cast<uintptr_t>(b.stream), b.size}].push_back(ptr);
  stats_.cached_bytes += b.size;
}

void* CachingDeviceAllocator::malloc_or_retry(size_t size) {
  DeviceGuard guard(device_);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation && stats_.cached_bytes > 0) {
    cudaGetLastError();
    release_cached_locked();
    err = cudaMalloc(&p, size);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    TRANQ_THROW(DeviceError,
                "cudaMalloc of {} bytes on cuda:{} failed: {} ({} bytes in use by tensors, {} "
                "cached; free tensors or use a smaller batch)",
                size, device_, cudaGetErrorString(err), stats_.in_use_bytes, stats_.cached_bytes);
  }
  return p;
}

void CachingDeviceAllocator::release_cached_locked() {
  // cudaFree waits for the device, so kernels still using a freed tensor's block finish first.
  bool waited = false;
  for (auto& [key, ptrs] : free_)
    for (void* p : ptrs) {
      cudaFree(p);
      waited = true;
    }
  if (waited) note_host_wait();
  free_.clear();
  stats_.cached_bytes = 0;
}

void CachingDeviceAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  DeviceGuard guard(device_);
  release_cached_locked();
}

MemoryStats CachingDeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tranq::cuda
