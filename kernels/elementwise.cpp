#include "kernels/elementwise.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {
void add(const Tensor& a, const Tensor& b, const Tensor& out) { TRANQ_DISPATCH(add, a, a, b, out); }
void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, const Tensor& out) {
  TRANQ_DISPATCH(axpby, a, alpha, a, beta, b, out);
}
void mul(const Tensor& a, const Tensor& b, const Tensor& out) { TRANQ_DISPATCH(mul, a, a, b, out); }
void scale(const Tensor& a, double s, const Tensor& out) { TRANQ_DISPATCH(scale, a, a, s, out); }
void relu_forward(const Tensor& x, const Tensor& y, double cap) {
  TRANQ_DISPATCH(relu_forward, x, x, y, cap);
}
void relu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, double cap) {
  TRANQ_DISPATCH(relu_backward, x, x, dy, dx, cap);
}
void sum_all(const Tensor& x, const Tensor& out) { TRANQ_DISPATCH(sum_all, x, x, out); }
}  // namespace tranq::kernels
