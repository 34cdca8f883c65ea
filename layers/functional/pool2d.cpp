#include "kernels/pool2d.h"

#include "layers/functional.h"

namespace tranq::ops {
namespace {
kernels::Pool2dGeometry geometry(const Pool2dParams& p) {
  return {p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w};
}
}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  check_defined(x, "max_pool2d", "x");
  const kernels::Pool2dGeometry g = geometry(p);
  const Shape out = kernels::pool2d_output_shape(x, g, "max_pool2d");
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(out, x.dtype(), x.device());
  // The argmax positions are all the backward needs: it never reads x.
  Tensor indices = Tensor::empty(out, DType::i32, x.device());
  kernels::max_pool2d_forward(xc, g, y, indices);
  const Shape in_shape = x.shape();
  return record(y, "max_pool2d", {x}, {}, [indices, in_shape, g](const Tensor& gy) {
    Tensor dx = Tensor::empty(in_shape, gy.dtype(), gy.device());
    kernels::max_pool2d_backward(gy.contiguous(), indices, g, dx);
    return std::vector<Tensor>{dx};
  });
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  check_defined(x, "avg_pool2d", "x");
  const kernels::Pool2dGeometry g = geometry(p);
  const Shape out = kernels::pool2d_output_shape(x, g, "avg_pool2d");
  Tensor y = Tensor::empty(out, x.dtype(), x.device());
  kernels::avg_pool2d_forward(x.contiguous(), g, y);
  const Shape in_shape = x.shape();
  return record(y, "avg_pool2d", {x}, {}, [g, in_shape](const Tensor& gy) {
    Tensor dx = Tensor::empty(in_shape, gy.dtype(), gy.device());
    kernels::avg_pool2d_backward(gy.contiguous(), g, dx);
    return std::vector<Tensor>{dx};
  });
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_defined(x, "global_avg_pool2d", "x");
  TRANQ_CHECK(x.dim() == 4, "global_avg_pool2d: expected x [N,C,H,W], got {}", tensor_str(x));
  Tensor y = Tensor::empty({x.size(0), x.size(1), 1, 1}, x.dtype(), x.device());
  kernels::global_avg_pool2d_forward(x.contiguous(), y);
  const Shape in_shape = x.shape();
  return record(y, "global_avg_pool2d", {x}, {}, [in_shape](const Tensor& gy) {
    Tensor dx = Tensor::empty(in_shape, gy.dtype(), gy.device());
    kernels::global_avg_pool2d_backward(gy.contiguous(), dx);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace tranq::ops
