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

// Whether this build's CUDA backend has cuDNN, which every convolution on a CUDA tensor needs
// (without it they throw DeviceError saying so). False in a build without the CUDA backend.
bool has_cudnn();

// Registers the CUDA device backend (memory, copies) with core so tensors can live on the GPU,
// and pinned_allocator() as core's pinned host allocator (Tensor::empty_pinned). Idempotent.
// Throws DeviceError("no CUDA device: ...") when device_count() is 0.
void init();

// Device memory comes from a caching allocator per device: freed blocks are kept in free lists
// per (device, stream) and size bin (device_block_size) and handed out again, so a training
// step's allocations stop calling cudaMalloc after the first step. When cudaMalloc fails, the
// cache is returned to the driver and the allocation retried once before DeviceError.
// TRANQ_CUDA_NO_CACHING=1 in the environment (read when a device is first used) turns the
// cache off, for memory checkers: exact sizes, cudaFree at once (each counted as a host wait).
struct MemoryStats {
  size_t in_use_bytes = 0;       // bin sizes of the blocks handed out and not yet freed
  size_t cached_bytes = 0;       // bin sizes of the blocks kept for reuse
  size_t peak_in_use_bytes = 0;  // the most in_use_bytes has been
  size_t hits = 0;               // allocations served from the cache
  size_t misses = 0;             // allocations that called cudaMalloc
  // The bytes asked for by the blocks handed out and not yet freed, before rounding to a bin,
  // and the most that has been: what tensors need, comparable with PyTorch's
  // memory_allocated / max_memory_allocated (which round to 512 B only), whereas the in-use
  // figures above count bins (up to 25% more above 1 MiB).
  size_t requested_bytes = 0;
  size_t peak_requested_bytes = 0;
  // The most in_use_bytes + cached_bytes has been: device memory held from the driver, as
  // PyTorch's max_memory_reserved.
  size_t peak_reserved_bytes = 0;
};

// The bookkeeping of one allocation handed out (`requested` bytes asked for, in a block of
// `block` bytes; cached_bytes already less the block if it came from the cache), which raises
// the three peaks, and of its release (before the block goes to the cache or the driver):
// in_use_bytes and requested_bytes. What the device allocator does with its MemoryStats; pure
// arithmetic, available in every build.
void count_allocation(MemoryStats& s, size_t requested, size_t block);
void count_release(MemoryStats& s, size_t requested, size_t block);

// The size bin of a device allocation: up to 1 MiB, a multiple of 512 B; above, the next of
// four steps per power of two (2^k, 1.25, 1.5, 1.75 * 2^k), so at most 25% is unused.
// 0 stays 0. Pure arithmetic, available in every build.
size_t device_block_size(size_t bytes);

// Statistics and cache release of cuda:`device`'s allocator. They call init() first, so they
// throw DeviceError("no CUDA device: ...") where there is none (or no CUDA backend).
MemoryStats memory_stats(int device = 0);
void empty_cache(int device = 0);  // returns every cached block of the device to the driver

// Page-locked host memory (cudaHostAlloc) for fast, asynchronous host<->device copies, cached
// by exact size (at most 1 GiB kept). A block that an asynchronous copy still reads
// (Tensor::to(device, non_blocking)) is not handed out again before that copy has finished,
// even when it was freed at once. Throws DeviceError("no CUDA device: ...") in a build
// without the CUDA backend or on a machine without a usable GPU.
Allocator& pinned_allocator();

// Waits until all work queued on cuda:`device` has finished (benchmarks, tests).
void synchronize(int device = 0);

// How many times the CUDA backend has made the host wait for a device since the process
// started: copies to or from the host (except non-blocking uploads from pinned memory), the
// transition passes that return their counts, synchronize(), Stream::synchronize(), the
// destruction of a Stream, and returning cached memory to the driver (empty_cache(), a
// cudaMalloc retried after it, a pinned block freed beyond the pinned cache's limit). A
// training step that only queues work leaves it unchanged (tests/test_cuda_step_waits.cpp;
// `tranq bench` reports host_waits_per_step). 0 in a build without the CUDA backend.
uint64_t host_wait_count();

// A CUDA stream of one device. Ops take their stream from the thread's current stream of the
// device their tensors are on: the legacy default stream, unless a StreamGuard names another.
// Streams made here are blocking streams, so work on them is ordered with the legacy default
// stream in both directions; two such streams are not ordered with each other: make one wait
// for the other (wait()) before it reads what the other wrote.
//
// Memory: a device block is tagged with the stream current at its allocation and, once freed,
// only handed out again on that stream (so work queued there is ordered after its last use).
// A tensor allocated under one stream and used on another must therefore stay alive until the
// other stream's work on it is done (wait() or synchronize() before dropping it).
//
// Move-only RAII owner of a cudaStream_t; destroying it waits for the work queued on it (so
// that blocks cached for it are free to reuse). Throws DeviceError("no CUDA device: ...") where
// there is no usable GPU. blocking = false makes a stream that is not ordered with the legacy
// default stream either (cudaStreamNonBlocking): what a copy stream needs to overlap work that
// runs on the legacy default stream; its users order it with events alone.
class Event;
class Stream {
 public:
  explicit Stream(int device = 0, bool blocking = true);
  ~Stream();
  Stream(Stream&& o) noexcept;
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // A non-owning handle of cuda:`device`'s legacy default stream (to wait() for it, or to make
  // it current again inside another guard).
  static Stream legacy_default(int device = 0);
  // A non-owning handle of this thread's current stream of cuda:`device` (see StreamGuard).
  static Stream current(int device = 0);

  int device() const { return device_; }
  void* handle() const { return handle_; }  // the cudaStream_t
  // Blocks the host until all work queued on this stream has finished.
  void synchronize() const;
  // Work queued on this stream from now on runs after all work queued on `other` so far (an
  // event recorded on other); the host does not wait. Both on the same device.
  void wait(const Stream& other) const;
  // Work queued on this stream from now on runs after the work that `event` captured when it
  // was last recorded (nothing, if it never was). The host does not wait.
  void wait(const Event& event) const;

 private:
  Stream(int device, void* handle, bool owned) : device_(device), handle_(handle), owned_(owned) {}
  int device_ = 0;
  void* handle_ = nullptr;
  bool owned_ = false;
};

// A point in a stream's queue (cudaEvent_t without timing), to order another stream after it
// later: record() captures the work queued on a stream so far, Stream::wait(event) orders after
// it. Move-only RAII; re-recording is allowed. Throws DeviceError("no CUDA device: ...") where
// there is no usable GPU.
class Event {
 public:
  explicit Event(int device = 0);
  ~Event();
  Event(Event&& o) noexcept;
  Event& operator=(Event&& o) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  int device() const { return device_; }
  void* handle() const { return handle_; }  // the cudaEvent_t
  void record(const Stream& stream);        // stream on the event's device

 private:
  int device_ = 0;
  void* handle_ = nullptr;
};

// Makes `stream` the current stream of its device on this thread for the guard's lifetime; the
// previous one is current again afterwards. Guards nest. Other threads and devices are unaffected.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  int device_;
  void* previous_;
};

// The thread's current stream of cuda:`device` as a cudaStream_t (nullptr: the legacy default
// stream). What every launcher of the backend passes to its kernels.
void* current_stream_handle(int device);

}  // namespace tranq::cuda
