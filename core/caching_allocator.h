#pragma once
// A caching allocator over any upstream allocator: freed blocks are kept by exact size and
// handed out again. A training step allocates the same shapes every step, so after the first
// step an allocation is a free-list pop instead of a fresh mapping (and, for large host
// blocks, a round of page faults). Cached memory is capped; past the cap blocks go back
// upstream. Thread-safe.
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"

namespace tranq {

class CachingAllocator final : public Allocator {
 public:
  struct Stats {
    size_t in_use_bytes = 0;   // handed out and not yet returned
    size_t cached_bytes = 0;   // kept for reuse
    size_t peak_in_use_bytes = 0;
    size_t hits = 0, misses = 0;
  };

  CachingAllocator(Allocator& upstream, size_t max_cached_bytes);
  ~CachingAllocator() override;
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  Stats stats() const;
  void release_cached();  // returns every cached block upstream

 private:
  Allocator& upstream_;
  size_t max_cached_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  Stats stats_;
};

// The host allocator's statistics (tensors on the CPU come from a CachingAllocator).
CachingAllocator::Stats cpu_allocator_stats();

}  // namespace tranq
