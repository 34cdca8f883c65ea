#include "kernels/bf16.h"

#include "kernels/bf16_math.h"
#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {

void round_to_bf16(const Tensor& x, const Tensor& out) {
  check_round_to_bf16_args(x, out);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  const int64_t n = x.numel();
  // Independent elements: any split gives the same bits.
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16::round(src[i]);
}

}  // namespace tranq::kernels::cpu
