#include "apps/step_stats.h"

#include <algorithm>

#include "kernels/accuracy.h"

namespace tranq::app {

namespace {
// More than the trainer ever has pending on CUDA (it flushes at least every 25 steps), so the
// buffers normally never grow.
constexpr int64_t kInitialCapacity = 32;
}  // namespace

void StepStats::reserve(int64_t capacity, const Tensor& loss) {
  const Tensor losses = Tensor::empty({capacity}, loss.dtype(), loss.device());
  const Tensor correct = Tensor::empty({capacity}, DType::i64, loss.device());
  const int64_t k = pending();
  if (k > 0) {
    losses.narrow(0, 0, k).copy_(losses_.narrow(0, 0, k));
    correct.narrow(0, 0, k).copy_(correct_.narrow(0, 0, k));
  }
  losses_ = losses;
  correct_ = correct;
}

void StepStats::add(const Tensor& loss_in, const Tensor& logits, const Tensor& labels) {
  check_defined(loss_in, "StepStats::add", "loss");
  check_defined(labels, "StepStats::add", "labels");
  TRANQ_CHECK(
      loss_in.numel() == 1 && (loss_in.dtype() == DType::f32 || loss_in.dtype() == DType::f64),
      "StepStats::add: loss must be a one-element f32 or f64 tensor, got {}", tensor_str(loss_in));
  const Tensor loss = loss_in.detach().contiguous().view({1});
  if (!losses_.defined() || losses_.dtype() != loss.dtype() || losses_.device() != loss.device()) {
    TRANQ_CHECK(pending() == 0,
                "StepStats::add: a loss {} differs in dtype or device from the pending steps' "
                "({}); flush() first",
                tensor_str(loss), tensor_str(losses_));
    reserve(kInitialCapacity, loss);
  } else if (pending() == losses_.numel()) {
    reserve(2 * losses_.numel(), loss);
  }
  const int64_t k = pending();
  // Counted first: a bad argument leaves nothing queued.
  kernels::count_correct_into(logits.contiguous(), labels.contiguous(), correct_, k);
  losses_.narrow(0, k, 1).copy_(loss);  // within the device: queued, no wait
  n_.push_back(labels.numel());
}

std::vector<StepRecord> StepStats::flush() {
  const int64_t k = pending();
  std::vector<StepRecord> out(static_cast<size_t>(k));
  if (k == 0) return out;
  const Tensor losses = losses_.narrow(0, 0, k).to(Device::cpu()).to(DType::f64);
  const Tensor correct = correct_.narrow(0, 0, k).to(Device::cpu());
  const double* pl = losses.data<double>();
  const int64_t* pc = correct.data<int64_t>();
  for (int64_t i = 0; i < k; ++i)
    out[static_cast<size_t>(i)] = {pl[i], pc[i], n_[static_cast<size_t>(i)]};
  n_.clear();
  return out;
}

}  // namespace tranq::app
