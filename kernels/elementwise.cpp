#include "kernels/elementwise.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {
void add(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_defined(a, "add", "a");
  check_same_device("add", a, {&b, &out});
  admit_output("add", out, {&a, &b});
  TRANQ_DISPATCH_CUDA(add, a, a, b, out);
}
void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, const Tensor& out) {
  check_defined(a, "axpby", "a");
  check_same_device("axpby", a, {&b, &out});
  admit_output("axpby", out, {&a, &b});
  TRANQ_DISPATCH_CUDA(axpby, a, alpha, a, beta, b, out);
}
void mul(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_defined(a, "mul", "a");
  check_same_device("mul", a, {&b, &out});
  admit_output("mul", out, {&a, &b});
  TRANQ_DISPATCH_CUDA(mul, a, a, b, out);
}
void scale(const Tensor& a, double s, const Tensor& out) {
  check_defined(a, "scale", "a");
  check_same_device("scale", a, {&out});
  admit_output("scale", out, {&a});
  TRANQ_DISPATCH_CUDA(scale, a, a, s, out);
}
void relu_forward(const Tensor& x, const Tensor& y, double cap) {
  check_defined(x, "relu_forward", "x");
  check_same_device("relu_forward", x, {&y});
  admit_output("relu_forward", y, {&x});
  TRANQ_DISPATCH_CUDA(relu_forward, x, x, y, cap);
}
void relu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, double cap) {
  check_defined(x, "relu_backward", "x");
  check_same_device("relu_backward", x, {&dy, &dx});
  admit_output("relu_backward", dx, {&x, &dy});
  TRANQ_DISPATCH_CUDA(relu_backward, x, x, dy, dx, cap);
}
void sum_all(const Tensor& x, const Tensor& out) {
  check_defined(x, "sum_all", "x");
  check_same_device("sum_all", x, {&out});
  TRANQ_DISPATCH_CUDA(sum_all, x, x, out);
}

void sum_squares(const Tensor& x, const Tensor& out) {
  check_defined(x, "sum_squares", "x");
  check_same_device("sum_squares", x, {&out});
  TRANQ_DISPATCH_CUDA(sum_squares, x, x, out);
}
}  // namespace tranq::kernels
