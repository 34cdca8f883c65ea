// Streams and events of the CUDA backend (kernels/cuda_runtime.h): the thread's current stream
// per device, which every launcher reads, and the RAII owners of cudaStream_t and cudaEvent_t.
#include <cuda_runtime.h>

#include <string>
#include <unordered_map>

#include "core/error.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_runtime.h"

namespace tranq::cuda {

namespace {
// The thread's current stream per device index; absent: the legacy default stream.
thread_local std::unordered_map<int, cudaStream_t> t_current;
}  // namespace

void* current_stream_handle(int device) {
  auto it = t_current.find(device);
  return it == t_current.end() ? nullptr : it->second;
}

namespace {
// Registers the backend (DeviceError "no CUDA device" without a GPU) and checks the index.
void require_device(int device) {
  init();
  std::string why;
  const int n = device_count(&why);
  TRANQ_CHECK_AS(DeviceError, device >= 0 && device < n, "no CUDA device cuda:{} (found {})",
                 device, n);
}
}  // namespace

Stream::Stream(int device, bool blocking) : device_(device), owned_(true) {
  require_device(device);
  DeviceGuard guard(device);
  cudaStream_t s = nullptr;
  // Blocking streams are ordered with the legacy default stream; non-blocking ones are not.
  TRANQ_CUDA_CHECK(
      cudaStreamCreateWithFlags(&s, blocking ? cudaStreamDefault : cudaStreamNonBlocking));
  handle_ = s;
}

Stream::~Stream() {
  if (owned_ && handle_) {
    DeviceGuard guard(device_);
    // Waits for the stream's work first: the allocator's free list for this handle keeps its
    // blocks, and the driver may hand the same handle to the next stream created, which must
    // not get a block that queued work still uses.
    note_host_wait();
    cudaStreamSynchronize(static_cast<cudaStream_t>(handle_));
    cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
  }
}

Stream::Stream(Stream&& o) noexcept : device_(o.device_), handle_(o.handle_), owned_(o.owned_) {
  o.handle_ = nullptr;
  o.owned_ = false;
}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    Stream old(std::move(*this));  // destroyed at the end of this scope
    device_ = o.device_;
    handle_ = o.handle_;
    owned_ = o.owned_;
    o.handle_ = nullptr;
    o.owned_ = false;
  }
  return *this;
}

Stream Stream::legacy_default(int device) {
  init();
  return Stream(device, nullptr, false);
}

Stream Stream::current(int device) {
  init();
  return Stream(device, current_stream_handle(device), false);
}

void Stream::synchronize() const {
  DeviceGuard guard(device_);
  note_host_wait();
  TRANQ_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
}

void Stream::wait(const Stream& other) const {
  TRANQ_CHECK(other.device_ == device_,
              "Stream::wait: a stream of cuda:{} cannot wait for one of cuda:{}", device_,
              other.device_);
  DeviceGuard guard(device_);
  cudaEvent_t ev = nullptr;
  TRANQ_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  const cudaError_t rec = cudaEventRecord(ev, static_cast<cudaStream_t>(other.handle_));
  const cudaError_t wait =
      rec == cudaSuccess ? cudaStreamWaitEvent(static_cast<cudaStream_t>(handle_), ev, 0) : rec;
  cudaEventDestroy(ev);  // released once the wait no longer needs it
  TRANQ_CUDA_CHECK(wait);
}

void Stream::wait(const Event& event) const {
  TRANQ_CHECK(event.device() == device_,
              "Stream::wait: a stream of cuda:{} cannot wait for an event of cuda:{}", device_,
              event.device());
  DeviceGuard guard(device_);
  TRANQ_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(handle_),
                                       static_cast<cudaEvent_t>(event.handle()), 0));
}

Event::Event(int device) : device_(device) {
  require_device(device);
  DeviceGuard guard(device);
  cudaEvent_t e = nullptr;
  TRANQ_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  handle_ = e;
}

Event::~Event() {
  if (handle_) {
    DeviceGuard guard(device_);
    cudaEventDestroy(static_cast<cudaEvent_t>(handle_));  // deferred by the driver while pending
  }
}

Event::Event(Event&& o) noexcept : device_(o.device_), handle_(o.handle_) {
  o.handle_ = nullptr;
}

Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    Event old(std::move(*this));
    device_ = o.device_;
    handle_ = o.handle_;
    o.handle_ = nullptr;
  }
  return *this;
}

void Event::record(const Stream& stream) {
  TRANQ_CHECK(stream.device() == device_,
              "Event::record: an event of cuda:{} cannot record a stream of cuda:{}", device_,
              stream.device());
  DeviceGuard guard(device_);
  TRANQ_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_),
                                   static_cast<cudaStream_t>(stream.handle())));
}

StreamGuard::StreamGuard(const Stream& stream)
    : device_(stream.device()), previous_(current_stream_handle(stream.device())) {
  t_current[device_] = static_cast<cudaStream_t>(stream.handle());
}

StreamGuard::~StreamGuard() {
  t_current[device_] = static_cast<cudaStream_t>(previous_);
}

}  // namespace tranq::cuda
