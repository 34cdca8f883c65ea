// CUDA device backend for core: cached device memory, host<->device copies and zero fills,
// pinned host memory.
#include <cuda_runtime.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_allocator.cuh"
#include "kernels/cuda_runtime.h"
#include "kernels/elementwise.h"

namespace tranq::cuda {
namespace {

class CudaBackend final : public DeviceBackend {
 public:
  explicit CudaBackend(int count) {
    for (int i = 0; i < count; ++i) allocators_.emplace_back(new CachingDeviceAllocator(i));
  }
  CachingDeviceAllocator& caching(int index) {
    TRANQ_CHECK_AS(DeviceError, index >= 0 && index < static_cast<int>(allocators_.size()),
                   "no CUDA device cuda:{} (found {})", index, allocators_.size());
    return *allocators_[static_cast<size_t>(index)];
  }
  Allocator& allocator(int index) override { return caching(index); }

  // What Tensor::to and copy_ promise their callers: when a copy that involves the host
  // returns, dst holds the bytes (the host may read dst, or free src). A copy within one GPU is
  // only queued on the current stream: every later use of dst on the device, and every host
  // read (a synchronous copy on that stream), comes after it, and src's block can be reused only
  // by work queued after it (the stream-ordered allocator), so nothing needs to wait.
  void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) override {
    if (bytes == 0) return;
    if (dst_dev.is_cuda() && src_dev.is_cuda() && dst_dev.index != src_dev.index) {
      DeviceGuard guard(dst_dev.index);
      note_host_wait();
      TRANQ_CUDA_CHECK(cudaMemcpyPeer(dst, dst_dev.index, src, src_dev.index, bytes));
      return;
    }
    const int index = dst_dev.is_cuda() ? dst_dev.index : src_dev.index;
    const cudaMemcpyKind kind = dst_dev.is_cpu()   ? cudaMemcpyDeviceToHost
                                : src_dev.is_cpu() ? cudaMemcpyHostToDevice
                                                   : cudaMemcpyDeviceToDevice;
    DeviceGuard guard(index);
    cudaStream_t stream = current_stream(index);
    TRANQ_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream));
    if (kind != cudaMemcpyDeviceToDevice) {
      note_host_wait();
      TRANQ_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
  }

  // Queued on the current stream; the pinned cache holds src's block until the copy has run.
  // A src that is not a block of the pinned cache (pageable memory) is copied synchronously.
  void copy_from_pinned_async(void* dst, Device dst_dev, const void* src, size_t bytes) override;

  // Queued on the current stream; later work there (kernels, copies) sees the zeros.
  void fill_zero(void* dst, Device dev, size_t bytes) override {
    if (bytes == 0) return;
    DeviceGuard guard(dev.index);
    TRANQ_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, current_stream(dev.index)));
  }

  // A kernel over words of the pattern's size, queued on the current stream.
  void fill_pattern(void* dst, Device dev, const void* pattern, size_t size,
                    size_t count) override;

 private:
  std::vector<std::unique_ptr<CachingDeviceAllocator>> allocators_;
};

// Never destroyed: device blocks and the registration outlive every static tensor, and the
// driver reclaims the memory at exit.
CudaBackend* g_backend = nullptr;

constexpr size_t kPinnedCacheBytes = size_t{1} << 30;

// Page-locked host blocks cached by exact size, like core's CachingAllocator, plus what an
// asynchronous host-to-device copy needs: record_use(p, stream) notes that work queued on the
// stream reads the block holding p, and a freed block waits in `pending_` until every such
// event has completed before it is handed out again (PyTorch's CachingHostAllocator does the
// same). Thread-safe: the loader's workers allocate and free batches concurrently.
class PinnedCache final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    collect_completed_locked();
    auto it = free_.find(bytes);
    void* p = nullptr;
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= bytes;
    } else {
      TRANQ_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocPortable));
    }
    live_.emplace(reinterpret_cast<uintptr_t>(p), Block{bytes, {}});
    return p;
  }

  void deallocate(void* ptr, size_t) override {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == live_.end()) return;  // not ours: nothing sensible to do in a destructor path
    Block b = std::move(it->second);
    live_.erase(it);
    if (!b.uses.empty()) {
      pending_.emplace_back(ptr, std::move(b));
      return;
    }
    release_or_cache_locked(ptr, b.bytes);
  }

  // True (and the use recorded) when p lies in a live block of this cache. `stream` belongs to
  // cuda:`device`, the current device.
  bool record_use(const void* p, int device, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    auto it = live_.upper_bound(a);
    if (it == live_.begin()) return false;
    --it;
    if (a >= it->first + it->second.bytes) return false;
    prune_completed_locked(it->second.uses);  // a block uploaded every step stays small
    cudaEvent_t ev = take_event_locked(device);
    const cudaError_t err = cudaEventRecord(ev, stream);
    if (err != cudaSuccess) events_[device].push_back(ev);
    TRANQ_CUDA_CHECK(err);
    it->second.uses.emplace_back(device, ev);
    return true;
  }

 private:
  struct Block {
    size_t bytes;
    // (device, event) after each async copy that reads the block
    std::vector<std::pair<int, cudaEvent_t>> uses;
  };

  // Drops the uses whose copies have run (their events go back to the spares). A query that
  // is not cudaSuccess (cudaErrorNotReady: still running) leaves the use in place and is
  // cleared from the thread's last error, so the next launch check does not report it.
  void prune_completed_locked(std::vector<std::pair<int, cudaEvent_t>>& uses) {
    size_t kept = 0;
    for (auto& u : uses) {
      if (cudaEventQuery(u.second) == cudaSuccess) {
        events_[u.first].push_back(u.second);
      } else {
        cudaGetLastError();
        uses[kept++] = u;
      }
    }
    uses.resize(kept);
  }

  // An event of `device` (the current device): recorded on one of its streams only.
  cudaEvent_t take_event_locked(int device) {
    std::vector<cudaEvent_t>& spare = events_[device];
    if (!spare.empty()) {
      cudaEvent_t ev = spare.back();
      spare.pop_back();
      return ev;
    }
    cudaEvent_t ev = nullptr;
    TRANQ_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    return ev;
  }

  // Moves the pending blocks whose copies have all run to the free lists.
  void collect_completed_locked() {
    for (size_t i = 0; i < pending_.size();) {
      auto& uses = pending_[i].second.uses;
      prune_completed_locked(uses);
      if (uses.empty()) {
        release_or_cache_locked(pending_[i].first, pending_[i].second.bytes);
        pending_[i] = std::move(pending_.back());
        pending_.pop_back();
      } else {
        ++i;
      }
    }
  }

  void release_or_cache_locked(void* p, size_t bytes) {
    if (cached_ + bytes > kPinnedCacheBytes) {
      note_host_wait();  // cudaFreeHost waits for the device
      cudaFreeHost(p);
      return;
    }
    free_[bytes].push_back(p);
    cached_ += bytes;
  }

  std::mutex mu_;
  std::map<uintptr_t, Block> live_;  // by start address, to find the block holding a pointer
  std::vector<std::pair<void*, Block>> pending_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<int, std::vector<cudaEvent_t>> events_;  // completed ones per device
  size_t cached_ = 0;
};

// Never destroyed, like the device allocators.
PinnedCache& pinned_cache() {
  static PinnedCache* cache = new PinnedCache;
  return *cache;
}

}  // namespace

namespace {

template <class U>
__global__ void fill_kernel(U* p, int64_t n, U v) {
  TRANQ_GRID_STRIDE_LOOP(i, n) p[i] = v;
}

template <class U>
void launch_fill(void* dst, const void* pattern, size_t count, cudaStream_t stream) {
  U v;
  std::memcpy(&v, pattern, sizeof v);
  const int64_t n = static_cast<int64_t>(count);
  fill_kernel<U><<<grid_for(n), kThreads, 0, stream>>>(static_cast<U*>(dst), n, v);
  TRANQ_CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::fill_pattern(void* dst, Device dev, const void* pattern, size_t size,
                               size_t count) {
  if (count == 0) return;
  DeviceGuard guard(dev.index);
  cudaStream_t stream = current_stream(dev.index);
  switch (size) {
    case 1:
      return launch_fill<uint8_t>(dst, pattern, count, stream);
    case 2:
      return launch_fill<uint16_t>(dst, pattern, count, stream);
    case 4:
      return launch_fill<uint32_t>(dst, pattern, count, stream);
    case 8:
      return launch_fill<unsigned long long>(dst, pattern, count, stream);
    default:
      TRANQ_THROW(ValueError, "fill_pattern: element size {} is not 1, 2, 4 or 8 bytes", size);
  }
}

void CudaBackend::copy_from_pinned_async(void* dst, Device dst_dev, const void* src,
                                         size_t bytes) {
  if (bytes == 0) return;
  DeviceGuard guard(dst_dev.index);
  cudaStream_t stream = current_stream(dst_dev.index);
  // Queue the copy first: a use recorded before it would complete too early.
  TRANQ_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
  if (!pinned_cache().record_use(src, dst_dev.index, stream)) {
    note_host_wait();
    TRANQ_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
}

int device_count(std::string* why) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) *why = cudaGetErrorString(err);
    cudaGetLastError();  // clear the error
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA runtime found no device";
  return n;
}

bool has_cudnn() {
#if defined(TRANQ_WITH_CUDNN) && TRANQ_WITH_CUDNN
  return true;
#else
  return false;
#endif
}

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string why;
    const int n = device_count(&why);
    if (n == 0) TRANQ_THROW(DeviceError, "no CUDA device: {}", why);
    g_backend = new CudaBackend(n);
    register_backend(DeviceType::cuda, g_backend);
    // Host tensors meant for the GPU (Tensor::empty_pinned: the loader's batches) page-locked.
    register_pinned_allocator(&pinned_allocator());
    // Gradient accumulation and the other per-backend hooks of the CUDA ops.
    ::tranq::kernels::cuda::register_cuda_ops();
  });
}

MemoryStats memory_stats(int device) {
  init();
  return g_backend->caching(device).stats();
}

void empty_cache(int device) {
  init();
  g_backend->caching(device).release_cached();
}

Allocator& pinned_allocator() {
  std::string why;
  if (device_count(&why) == 0)
    TRANQ_THROW(DeviceError, "no CUDA device: pinned_allocator: {}", why);
  return pinned_cache();
}

void synchronize(int device) {
  init();
  DeviceGuard guard(device);
  note_host_wait();
  TRANQ_CUDA_CHECK(cudaDeviceSynchronize());
}

namespace {
std::atomic<uint64_t> g_host_waits{0};
}  // namespace

void note_host_wait() {
  g_host_waits.fetch_add(1, std::memory_order_relaxed);
}

uint64_t host_wait_count() {
  return g_host_waits.load(std::memory_order_relaxed);
}

}  // namespace tranq::cuda
