#include "kernels/gemm.h"

#include <atomic>

#include "kernels/dispatch.h"

namespace tranq::kernels {
namespace {
std::atomic<bool> g_allow_tf32{false};
}  // namespace

void set_allow_tf32(bool allow) {
  g_allow_tf32.store(allow, std::memory_order_relaxed);
}
bool allow_tf32() {
  return g_allow_tf32.load(std::memory_order_relaxed);
}

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c, ComputePrecision precision) {
  check_defined(c, "gemm", "c");
  check_same_device("gemm", c, {&a, &b});
  TRANQ_DISPATCH_CUDA(gemm, c, trans_a, trans_b, alpha, a, b, beta, c, precision);
}
}  // namespace tranq::kernels
