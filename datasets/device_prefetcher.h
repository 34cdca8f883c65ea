#pragma once
// Uploads the loader's batches to a GPU on a copy stream of its own, so that the copy of one
// batch overlaps the compute of the step before: a training step on a GPU only queues work
// (tests/test_cuda_step_waits.cpp), so the host reaches the next upload while the device still
// computes the last step. On the CPU it hands the batch through unchanged.
#include <memory>

#include "core/device.h"
#include "core/tensor.h"
#include "datasets/loader.h"

namespace tranq::data {

// One prefetcher per training loop, used from the thread that queues the steps. Each upload
// goes into one of two device buffers (images, labels) in turn, so that the copy for step j
// waits only for step j-2's work, not for step j-1's:
//   upload(j): mark the end of step j-1's work on the compute stream (the thread's current
//              stream); the copy stream waits for the mark of step j-2, the last user of this
//              buffer, then copies; the compute stream waits for the copy.
// Contract: the tensors upload() returns are valid until the second upload() after it. A
// caller that still holds them (or a view of them) then keeps them: the prefetcher sees that
// and fills a fresh buffer instead of overwriting them. Batches come from the loader in
// page-locked memory (Tensor::empty_pinned); other host memory is copied synchronously, and a
// batch already on a GPU is handed through (to(device)) on the compute stream.
class DevicePrefetcher {
 public:
  explicit DevicePrefetcher(Device device);
  ~DevicePrefetcher();
  DevicePrefetcher(const DevicePrefetcher&) = delete;
  DevicePrefetcher& operator=(const DevicePrefetcher&) = delete;

  struct DeviceBatch {
    Tensor images;
    Tensor labels;
  };
  // The batch's images and labels on the device; on the CPU the batch's own tensors.
  DeviceBatch upload(const Batch& batch);

  Device device() const { return device_; }
  // How many uploads filled a fresh device buffer (the first two, a new batch shape, buffers
  // still held by the caller); the others reused one. For tests and diagnostics.
  int64_t fresh_buffers() const { return fresh_; }

 private:
  struct State;  // the copy stream, the buffers and their events (CUDA only)
  Device device_;
  std::unique_ptr<State> state_;
  int64_t fresh_ = 0;
};

}  // namespace tranq::data
