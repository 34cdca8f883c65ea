#include "core/caching_allocator.h"

#include <algorithm>

namespace tranq {

CachingAllocator::CachingAllocator(Allocator& upstream, size_t max_cached_bytes)
    : upstream_(upstream), max_cached_(max_cached_bytes) {}

CachingAllocator::~CachingAllocator() { release_cached(); }

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(bytes);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= bytes;
      stats_.in_use_bytes += bytes;
      stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
      ++stats_.hits;
      return p;
    }
  }
  void* p = upstream_.allocate(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.in_use_bytes += bytes;
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  ++stats_.misses;
  return p;
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.in_use_bytes -= bytes;
    if (stats_.cached_bytes + bytes <= max_cached_) {
      free_[bytes].push_back(ptr);
      stats_.cached_bytes += bytes;
      return;
    }
  }
  upstream_.deallocate(ptr, bytes);
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::release_cached() {
  std::unordered_map<size_t, std::vector<void*>> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocks.swap(free_);
    stats_.cached_bytes = 0;
  }
  for (auto& [size, ptrs] : blocks)
    for (void* p : ptrs) upstream_.deallocate(p, size);
}

}  // namespace tranq
