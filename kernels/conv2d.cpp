#include "kernels/conv2d.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  TRANQ_CHECK(x.size() == 4, "conv2d: expected input [N, C, H, W], got {}", shape_str(x));
  TRANQ_CHECK(w.size() == 4, "conv2d: expected weight [O, C/groups, KH, KW], got {}", shape_str(w));
  TRANQ_CHECK(p.stride_h >= 1 && p.stride_w >= 1, "conv2d: stride must be >= 1, got ({}, {})",
              p.stride_h, p.stride_w);
  TRANQ_CHECK(p.pad_h >= 0 && p.pad_w >= 0, "conv2d: padding must be >= 0, got ({}, {})", p.pad_h,
              p.pad_w);
  TRANQ_CHECK(p.dilation_h >= 1 && p.dilation_w >= 1, "conv2d: dilation must be >= 1, got ({}, {})",
              p.dilation_h, p.dilation_w);
  TRANQ_CHECK(p.groups >= 1, "conv2d: groups must be >= 1, got {}", p.groups);
  TRANQ_CHECK(x[1] % p.groups == 0 && w[0] % p.groups == 0,
              "conv2d: groups={} must divide input channels {} and output channels {}", p.groups,
              x[1], w[0]);
  TRANQ_CHECK(w[1] * p.groups == x[1],
              "conv2d: weight {} expects {} input channels (C/groups = {} with groups={}), input "
              "{} has {}",
              shape_str(w), w[1] * p.groups, w[1], p.groups, shape_str(x), x[1]);
  TRANQ_CHECK(w[2] >= 1 && w[3] >= 1, "conv2d: empty kernel {}", shape_str(w));
  // As in PyTorch, the image may not be empty (cuDNN rejects a zero height or width).
  TRANQ_CHECK(x[2] >= 1 && x[3] >= 1,
              "conv2d: input {} has an empty image dimension; only the batch may be 0",
              shape_str(x));
  const int64_t eh = p.dilation_h * (w[2] - 1) + 1, ew = p.dilation_w * (w[3] - 1) + 1;
  TRANQ_CHECK(x[2] + 2 * p.pad_h >= eh && x[3] + 2 * p.pad_w >= ew,
              "conv2d: padded input {}x{} is smaller than the dilated kernel {}x{}",
              x[2] + 2 * p.pad_h, x[3] + 2 * p.pad_w, eh, ew);
  return {x[0], w[0], (x[2] + 2 * p.pad_h - eh) / p.stride_h + 1,
          (x[3] + 2 * p.pad_w - ew) / p.stride_w + 1};
}

Conv2dGeometry::Conv2dGeometry(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const Shape y = conv2d_output_shape(x, w, p);
  N = x[0], C = x[1], H = x[2], W = x[3];
  O = w[0], KH = w[2], KW = w[3];
  OH = y[2], OW = y[3];
  G = p.groups, Cg = C / G, Og = O / G;
  K = Cg * KH * KW, P = OH * OW;
  sh = p.stride_h, sw = p.stride_w, ph = p.pad_h, pw = p.pad_w, dh = p.dilation_h,
  dw = p.dilation_w;
}

void check_conv2d_operand(const Tensor& t, const Tensor& ref, const char* op, const char* arg) {
  check_defined(t, op, arg);
  TRANQ_CHECK(t.dtype() == ref.dtype(), "{}: {} is {} but the input is {}; use one dtype", op, arg,
              tensor_str(t), tensor_str(ref));
  TRANQ_CHECK(t.device() == ref.device(), "{}: {} is {} but the input is {}", op, arg,
              tensor_str(t), tensor_str(ref));
  TRANQ_CHECK(t.is_contiguous(), "{}: {} must be contiguous; call contiguous() first", op, arg);
  TRANQ_CHECK(is_floating(t.dtype()), "{}: expected f32 or f64 tensors, got {}", op, tensor_str(t));
}

void check_conv2d_shape(const Tensor& t, const Shape& expected, const char* op, const char* arg) {
  TRANQ_CHECK(t.shape() == expected, "{}: {} is {}, expected shape {}", op, arg, tensor_str(t),
              shape_str(expected));
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const Conv2dParams& p, ComputePrecision precision) {
  check_defined(x, "conv2d_forward", "x");
  check_same_device("conv2d_forward", x, {&w, &bias, &y});
  TRANQ_DISPATCH_CUDA(conv2d_forward, x, x, w, bias, y, p, precision);
}
void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p, ComputePrecision precision) {
  check_defined(dy, "conv2d_backward_data", "dy");
  check_same_device("conv2d_backward_data", dy, {&w, &dx});
  TRANQ_DISPATCH_CUDA(conv2d_backward_data, dy, dy, w, dx, p, precision);
}
void conv2d_backward_weight(const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Conv2dParams& p, ComputePrecision precision) {
  check_defined(x, "conv2d_backward_weight", "x");
  check_same_device("conv2d_backward_weight", x, {&dy, &dw});
  TRANQ_DISPATCH_CUDA(conv2d_backward_weight, x, x, dy, dw, p, precision);
}
void conv2d_backward_bias(const Tensor& dy, const Tensor& db) {
  check_defined(dy, "conv2d_backward_bias", "dy");
  check_same_device("conv2d_backward_bias", dy, {&db});
  TRANQ_DISPATCH_CUDA(conv2d_backward_bias, dy, dy, db);
}

}  // namespace tranq::kernels
