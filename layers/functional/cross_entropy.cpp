#include "kernels/cross_entropy.h"

#include "layers/functional.h"

namespace tranq::ops {

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing,
                     bool labels_checked) {
  check_defined(logits, "cross_entropy", "logits");
  check_defined(labels, "cross_entropy", "labels");
  TRANQ_CHECK(logits.dim() == 2 && logits.size(0) > 0 && logits.size(1) > 0,
              "cross_entropy: expected logits [N,C] with N, C > 0, got {}", tensor_str(logits));
  TRANQ_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0),
              "cross_entropy: expected labels [{}] for logits {}, got {}", logits.size(0),
              tensor_str(logits), tensor_str(labels));
  TRANQ_CHECK(labels.device() == logits.device(),
              "cross_entropy: labels {} and logits {} are on different devices", tensor_str(labels),
              tensor_str(logits));
  TRANQ_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
              "cross_entropy: label_smoothing must lie in [0, 1], got {}", label_smoothing);
  if (!labels_checked) kernels::check_labels(labels, logits.size(1), "cross_entropy");
  const Tensor lc = labels.contiguous();
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  Tensor probs = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  kernels::cross_entropy_forward(logits.contiguous(), lc, label_smoothing, loss, probs);
  // Labels are constants: they are captured, not recorded as inputs, and get no gradient.
  return record(loss, "cross_entropy", {logits}, {lc}, [probs, lc, label_smoothing](const Tensor& g) {
    Tensor dlogits = Tensor::empty_like(probs);
    kernels::cross_entropy_backward(probs, lc, label_smoothing, g, dlogits);
    return std::vector<Tensor>{dlogits};
  });
}

}  // namespace tranq::ops
