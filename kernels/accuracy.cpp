#include "kernels/accuracy.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {

void check_count_correct_args(const Tensor& logits, const Tensor& labels, const Tensor& out,
                              int64_t index) {
  const char* op = "count_correct_into";
  check_defined(logits, op, "logits");
  check_defined(labels, op, "labels");
  check_defined(out, op, "out");
  TRANQ_CHECK(logits.dim() == 2 && logits.size(1) > 0 && logits.is_contiguous() &&
                  (logits.dtype() == DType::f32 || logits.dtype() == DType::f64),
              "{}: logits must be a contiguous f32 or f64 [N,C] with C > 0, got {}", op,
              tensor_str(logits));
  TRANQ_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0) && labels.is_contiguous() &&
                  (labels.dtype() == DType::i32 || labels.dtype() == DType::i64),
              "{}: labels must be a contiguous i32 or i64 [{}], got {}", op, logits.size(0),
              tensor_str(labels));
  TRANQ_CHECK(out.dim() == 1 && out.dtype() == DType::i64 && out.is_contiguous(),
              "{}: out must be a contiguous i64 1-D buffer, got {}", op, tensor_str(out));
  TRANQ_CHECK(index >= 0 && index < out.numel(), "{}: index {} is outside out {}", op, index,
              tensor_str(out));
  check_same_device(op, logits, {&labels, &out});
}

void count_correct_into(const Tensor& logits, const Tensor& labels, const Tensor& out,
                        int64_t index) {
  check_defined(logits, "count_correct_into", "logits");
  check_same_device("count_correct_into", logits, {&labels, &out});
  TRANQ_DISPATCH_CUDA(count_correct_into, logits, logits, labels, out, index);
}

}  // namespace tranq::kernels
