#include "kernels/bf16.h"

#include "kernels/bf16_math.h"
#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {

void round_to_bf16(const Tensor& x, const Tensor& out) {
  const char* op = "round_to_bf16";
  check_defined(x, op, "x");
  check_defined(out, op, "out");
  TRANQ_CHECK(x.dtype() == DType::f32 && out.dtype() == DType::f32,
              "{}: expected f32 tensors, got x {} and out {}", op, tensor_str(x), tensor_str(out));
  TRANQ_CHECK(x.shape() == out.shape(), "{}: out {} must have x's shape {}", op, tensor_str(out),
              tensor_str(x));
  TRANQ_CHECK(x.is_contiguous() && out.is_contiguous(),
              "{}: needs contiguous tensors; call contiguous() first", op);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  const int64_t n = x.numel();
  // Independent elements: any split gives the same bits.
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16::round(src[i]);
}

}  // namespace tranq::kernels::cpu
