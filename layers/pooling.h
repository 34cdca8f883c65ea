#pragma once
// Pooling modules over [N, C, H, W] with square windows: torch.nn.MaxPool2d, AvgPool2d and
// AdaptiveAvgPool2d (output 1x1 only). No dilation, no ceil_mode.
#include <cstdint>

#include "layers/functional.h"
#include "layers/module.h"

namespace tranq {

// stride 0 means "same as kernel_size", PyTorch's default (stride=None).
ops::Pool2dParams make_pool2d_params(int64_t kernel_size, int64_t stride, int64_t padding,
                                     const char* who);

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  const ops::Pool2dParams& pool_params() const { return params_; }

 private:
  ops::Pool2dParams params_;
};

// Padding counts towards the divisor (count_include_pad=True, PyTorch's default).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  const ops::Pool2dParams& pool_params() const { return params_; }

 private:
  ops::Pool2dParams params_;
};

// Only output_size 1 (global average pooling, [N, C, H, W] -> [N, C, 1, 1]) is supported;
// other sizes throw ValueError at construction.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(int64_t output_size = 1);
  Tensor forward(const Tensor& x) override;
};

}  // namespace tranq
