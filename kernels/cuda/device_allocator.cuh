#pragma once
// The caching device allocator behind tranq::cuda::memory_stats() (see kernels/cuda_runtime.h
// for the policy). A block freed on a stream goes back to that stream's free list and is only
// handed out again on the same stream, where it is ordered after every kernel that used it, so
// a tensor can be freed while kernels that read it are still queued.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "kernels/cuda_runtime.h"

namespace tranq::cuda {

class CachingDeviceAllocator final : public Allocator {
 public:
  // TRANQ_CUDA_NO_CACHING=1 in the environment turns the cache off (exact-size cudaMalloc,
  // cudaFree on every free): slow, but out-of-bounds accesses then leave the allocation.
  explicit CachingDeviceAllocator(int device);
  // Blocks stay with the driver when the process ends: freeing them during static destruction
  // would race the CUDA runtime's own teardown.
  ~CachingDeviceAllocator() override = default;

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  MemoryStats stats() const;
  void release_cached();  // cudaFree every cached block of this device

 private:
  struct Block {
    size_t size;       // the bin's
    size_t requested;  // what allocate() was asked for (MemoryStats::requested_bytes)
    cudaStream_t stream;
  };
  using BinKey = std::pair<uintptr_t, size_t>;  // (stream, bin size)

  void* malloc_or_retry(size_t size);
  void release_cached_locked();

  int device_;
  bool caching_;
  mutable std::mutex mu_;
  std::map<BinKey, std::vector<void*>> free_;
  std::unordered_map<void*, Block> live_;
  MemoryStats stats_;
};

}  // namespace tranq::cuda
