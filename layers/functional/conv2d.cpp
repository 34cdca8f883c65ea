// conv2d over kernels/conv2d.h. The backward closure skips the data gradient when the input
// needs none (the first layer of a network), which is a whole convolution's worth of work.
#include "kernels/conv2d.h"

#include "layers/functional.h"

namespace tranq::ops {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              ComputePrecision precision) {
  check_defined(x, "conv2d", "x");
  check_defined(weight, "conv2d", "weight");
  const kernels::Conv2dParams kp{p.stride_h,   p.stride_w,   p.pad_h, p.pad_w,
                                 p.dilation_h, p.dilation_w, p.groups};
  Tensor cx = x.contiguous(), cw = weight.contiguous();
  const bool has_bias = bias.defined();
  Tensor cb = has_bias ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty(kernels::conv2d_output_shape(x.shape(), weight.shape(), kp), x.dtype(),
                           x.device());
  kernels::conv2d_forward(cx, cw, cb, y, kp, precision);

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = has_bias && bias.requires_grad();
  Tensor sx = need_w ? cx.detach() : Tensor(), sw = need_x ? cw.detach() : Tensor();
  const Shape x_shape = x.shape(), w_shape = weight.shape();
  std::vector<Tensor> inputs{x, weight};
  if (has_bias) inputs.push_back(bias);
  return record(y, "conv2d", inputs, {sx, sw},
                [sx, sw, x_shape, w_shape, kp, need_x, need_w, need_b, has_bias,
                 precision](const Tensor& grad) {
                  Tensor g = grad.contiguous();
                  std::vector<Tensor> grads(has_bias ? 3 : 2);
                  if (need_x) {
                    grads[0] = Tensor::empty(x_shape, g.dtype(), g.device());
                    kernels::conv2d_backward_data(g, sw, grads[0], kp, precision);
                  }
                  if (need_w) {
                    grads[1] = Tensor::empty(w_shape, g.dtype(), g.device());
                    kernels::conv2d_backward_weight(sx, g, grads[1], kp, precision);
                  }
                  if (need_b) {
                    grads[2] = Tensor::empty({g.size(1)}, g.dtype(), g.device());
                    kernels::conv2d_backward_bias(g, grads[2]);
                  }
                  return grads;
                });
}

}  // namespace tranq::ops
