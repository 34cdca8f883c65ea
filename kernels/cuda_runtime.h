#pragma once
// The CUDA backend's entry points, callable from any build: without the CUDA backend (or
// without a GPU) they report that no device is available instead of failing to link.
#include <cstddef>
#include <string>

#include "core/allocator.h"

namespace tranq::cuda {

// Number of usable CUDA devices; 0 when the build has no CUDA backend or the driver/runtime
// answers with an error ("driver version is insufficient" on machines without a driver).
// When 0 and why is given, *why says the reason.
int device_count(std::string* why = nullptr);

// Registers the CUDA device backend (memory, copies) with core so tensors can live on the GPU,
// and pinned_allocator() as core's pinned host allocator (Tensor::empty_pinned). Idempotent.
// Throws DeviceError("no CUDA device: ...") when device_count() is 0.
void init();

// Device memory comes from a caching allocator per device: freed blocks are kept in free lists
// per (device, stream) and size bin (device_block_size) and handed out again, so a training
// step's allocations stop calling cudaMalloc after the first step. When cudaMalloc fails, the
// cache is returned to the driver and the allocation retried once before DeviceError.
struct MemoryStats {
  size_t in_use_bytes = 0;       // bin sizes of the blocks handed out and not yet freed
  size_t cached_bytes = 0;       // bin sizes of the blocks kept for reuse
  size_t peak_in_use_bytes = 0;  // the most in_use_bytes has been
  size_t hits = 0;               // allocations served from the cache
  size_t misses = 0;             // allocations that called cudaMalloc
};

// The size bin of a device allocation: up to 1 MiB, a multiple of 512 B; above, the next of
// four steps per power of two (2^k, 1.25, 1.5, 1.75 * 2^k), so at most 25% is unused.
// 0 stays 0. Pure arithmetic, available in every build.
size_t device_block_size(size_t bytes);

// Statistics and cache release of cuda:`device`'s allocator. They call init() first, so they
// throw DeviceError("no CUDA device: ...") where there is none (or no CUDA backend).
MemoryStats memory_stats(int device = 0);
void empty_cache(int device = 0);  // returns every cached block of the device to the driver

// Page-locked host memory (cudaHostAlloc) for fast, asynchronous host<->device copies, cached
// by exact size (at most 1 GiB kept). Throws DeviceError("no CUDA device: ...") in a build
// without the CUDA backend or on a machine without a usable GPU.
Allocator& pinned_allocator();

// Waits until all work queued on cuda:`device` has finished (benchmarks, tests).
void synchronize(int device = 0);

}  // namespace tranq::cuda
