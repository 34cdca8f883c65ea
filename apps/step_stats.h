#pragma once
// Per-step training statistics kept where the step ran: the loss value and the correct count
// of each step go into slots of device buffers without any host round trip, and flush() reads
// every pending step at once (one copy per buffer). The trainer flushes on every step on the
// CPU and only at its log, progress and save points on CUDA.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tranq::app {

struct StepRecord {
  double loss = 0;      // the step's scalar loss, as loss.item() would give it
  int64_t correct = 0;  // rows whose first argmax equals the label (kernels/accuracy.h)
  int64_t n = 0;        // the batch size
};

class StepStats {
 public:
  // Queues a step: loss a one-element f32/f64 tensor, logits [N,C] and labels [N] on the
  // loss's device (labels as the loss was computed against). Nothing waits for the device.
  // Every pending step must have the same device and loss dtype (ValueError otherwise).
  void add(const Tensor& loss, const Tensor& logits, const Tensor& labels);
  // The pending steps in the order they were added; none pending afterwards.
  std::vector<StepRecord> flush();
  int64_t pending() const { return static_cast<int64_t>(n_.size()); }

 private:
  void reserve(int64_t capacity, const Tensor& loss);

  Tensor losses_;   // [capacity] of the loss's dtype, on its device
  Tensor correct_;  // [capacity] i64, on the same device
  std::vector<int64_t> n_;
};

}  // namespace tranq::app
