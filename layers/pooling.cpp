#include "layers/pooling.h"

namespace tranq {

ops::Pool2dParams make_pool2d_params(int64_t kernel_size, int64_t stride, int64_t padding,
                                     const char* who) {
  if (stride == 0) stride = kernel_size;
  TRANQ_CHECK(kernel_size > 0 && stride > 0,
              "{}: kernel_size and stride must be positive, got {} and {}", who, kernel_size,
              stride);
  // PyTorch's rule: padding must not exceed half the window.
  TRANQ_CHECK(padding >= 0 && 2 * padding <= kernel_size,
              "{}: padding must be in [0, kernel_size/2], got {} for kernel {}", who, padding,
              kernel_size);
  ops::Pool2dParams p;
  p.kernel_h = p.kernel_w = kernel_size;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = padding;
  return p;
}

namespace {
void check_input(const Tensor& x, const char* who) {
  TRANQ_CHECK(x.dim() == 4, "{}: expected input [N, C, H, W], got {}", who, tensor_str(x));
}
}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
    : params_(make_pool2d_params(kernel_size, stride, padding, "MaxPool2d")) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_input(x, "MaxPool2d");
  return ops::max_pool2d(x, params_);
}

AvgPool2d::AvgPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
    : params_(make_pool2d_params(kernel_size, stride, padding, "AvgPool2d")) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_input(x, "AvgPool2d");
  return ops::avg_pool2d(x, params_);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t output_size) {
  TRANQ_CHECK(output_size == 1,
              "AdaptiveAvgPool2d: only output_size 1 (global average pooling) is supported, got {}",
              output_size);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_input(x, "AdaptiveAvgPool2d");
  return ops::global_avg_pool2d(x);
}

}  // namespace tranq
