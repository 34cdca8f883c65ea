#include "kernels/gemm.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c) {
  TRANQ_DISPATCH(gemm, c, trans_a, trans_b, alpha, a, b, beta, c);
}
}  // namespace tranq::kernels
