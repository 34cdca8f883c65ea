#include "kernels/bf16.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {

void round_to_bf16(const Tensor& x, const Tensor& out) {
  check_defined(x, "round_to_bf16", "x");
  check_same_device("round_to_bf16", x, {&out});
  TRANQ_DISPATCH_CUDA(round_to_bf16, x, x, out);
}

void check_round_to_bf16_args(const Tensor& x, const Tensor& out) {
  const char* op = "round_to_bf16";
  check_defined(x, op, "x");
  check_defined(out, op, "out");
  TRANQ_CHECK(x.dtype() == DType::f32 && out.dtype() == DType::f32,
              "{}: expected f32 tensors, got x {} and out {}", op, tensor_str(x), tensor_str(out));
  TRANQ_CHECK(x.shape() == out.shape(), "{}: out {} must have x's shape {}", op, tensor_str(out),
              tensor_str(x));
  TRANQ_CHECK(x.is_contiguous() && out.is_contiguous(),
              "{}: needs contiguous tensors; call contiguous() first", op);
}

void check_bf16_dtypes(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    TRANQ_CHECK(t->dtype() == DType::f32,
                "{}: bf16 compute precision needs f32 tensors, got {}; bf16 autocast is for f32 "
                "models (use precision fp32 for f64)",
                op, tensor_str(*t));
  }
}

Tensor bf16_rounded_copy(const Tensor& x, const char* op, const char* arg) {
  check_defined(x, op, arg);
  check_bf16_dtypes(op, {&x});
  TRANQ_CHECK(x.is_contiguous(), "{}: {} must be contiguous; call contiguous() first", op, arg);
  Tensor out = Tensor::empty(x.shape(), DType::f32, x.device());
  round_to_bf16(x, out);
  return out;
}

}  // namespace tranq::kernels
