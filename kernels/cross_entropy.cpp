#include "kernels/cross_entropy.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {

void check_labels(const Tensor& labels, int64_t num_classes, const char* op) {
  TRANQ_CHECK(labels.dtype() == DType::i32 || labels.dtype() == DType::i64,
              "{}: labels must be i32 or i64, got {}", op, tensor_str(labels));
  const Tensor host = labels.to(Device::cpu()).contiguous();
  const int64_t n = host.numel();
  auto check = [&](auto* p) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t y = static_cast<int64_t>(p[i]);
      TRANQ_CHECK(y >= 0 && y < num_classes,
                  "{}: label {} at batch index {} is outside [0, {}); labels must be class "
                  "indices below the number of logits",
                  op, y, i, num_classes);
    }
  };
  if (host.dtype() == DType::i32) {
    check(host.data<int32_t>());
  } else {
    check(host.data<int64_t>());
  }
}

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, double label_smoothing,
                           const Tensor& loss, const Tensor& probs) {
  check_defined(logits, "cross_entropy_forward", "logits");
  check_same_device("cross_entropy_forward", logits, {&labels, &loss, &probs});
  TRANQ_DISPATCH_CUDA(cross_entropy_forward, logits, logits, labels, label_smoothing, loss, probs);
}
void cross_entropy_backward(const Tensor& probs, const Tensor& labels, double label_smoothing,
                            const Tensor& dloss, const Tensor& dlogits) {
  check_defined(probs, "cross_entropy_backward", "probs");
  check_same_device("cross_entropy_backward", probs, {&labels, &dloss, &dlogits});
  TRANQ_DISPATCH_CUDA(cross_entropy_backward, probs, probs, labels, label_smoothing, dloss,
                      dlogits);
}

}  // namespace tranq::kernels
