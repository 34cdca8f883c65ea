#include "kernels/elementwise.h"

#include "layers/functional.h"

namespace tranq::ops {
namespace {
Tensor like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = like(a);
  kernels::add(a, b, out);
  return record(out, "add", {a, b}, {}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = like(a);
  kernels::axpby(1.0, a, -1.0, b, out);
  return record(out, "sub", {a, b}, {}, [](const Tensor& g) {
    Tensor nb = like(g);
    kernels::scale(g, -1.0, nb);
    return std::vector<Tensor>{g, nb};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = like(a);
  kernels::mul(a, b, out);
  Tensor sa = a.detach(), sb = b.detach();
  return record(out, "mul", {a, b}, {sa, sb}, [sa, sb](const Tensor& g) {
    Tensor ga = like(g), gb = like(g);
    kernels::mul(g, sb, ga);
    kernels::mul(g, sa, gb);
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor scale(const Tensor& a, double s) {
  Tensor out = like(a);
  kernels::scale(a, s, out);
  return record(out, "scale", {a}, {}, [s](const Tensor& g) {
    Tensor ga = like(g);
    kernels::scale(g, s, ga);
    return std::vector<Tensor>{ga};
  });
}

namespace {
Tensor relu_capped(const Tensor& x, double cap, const char* name) {
  Tensor y = like(x);
  kernels::relu_forward(x, y, cap);
  Tensor sx = x.detach();
  return record(y, name, {x}, {sx}, [sx, cap](const Tensor& g) {
    Tensor gx = like(g);
    kernels::relu_backward(sx, g, gx, cap);
    return std::vector<Tensor>{gx};
  });
}
}  // namespace

Tensor relu(const Tensor& x) { return relu_capped(x, 0.0, "relu"); }
Tensor relu6(const Tensor& x) { return relu_capped(x, 6.0, "relu6"); }

Tensor sum(const Tensor& x) {
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  kernels::sum_all(x, out);
  Shape shape = x.shape();
  return record(out, "sum", {x}, {}, [shape](const Tensor& g) {
    // g is a scalar; the gradient of a sum is g everywhere.
    Tensor gx = Tensor::full(shape, g.item(), g.dtype(), g.device());
    return std::vector<Tensor>{gx};
  });
}

Tensor mean(const Tensor& x) {
  TRANQ_CHECK(x.numel() > 0, "mean of an empty tensor");
  return scale(sum(x), 1.0 / static_cast<double>(x.numel()));
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor out = x.reshape(shape);
  Shape in_shape = x.shape();
  return record(out, "reshape", {x}, {},
                [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
}

Tensor flatten(const Tensor& x, int64_t start_dim) {
  check_defined(x, "flatten", "x");
  return reshape(x, flattened_shape(x.shape(), start_dim));
}

}  // namespace tranq::ops
