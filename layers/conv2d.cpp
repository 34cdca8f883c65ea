#include "layers/conv2d.h"

#include <cmath>

#include "layers/init.h"

namespace tranq {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride,
               int64_t padding, int64_t dilation, int64_t groups, bool bias, DType dtype,
               std::optional<uint64_t> seed)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {
  TRANQ_CHECK(in_channels > 0 && out_channels > 0 && kernel_size > 0,
              "Conv2d: channels and kernel size must be positive, got in={} out={} kernel={}",
              in_channels, out_channels, kernel_size);
  TRANQ_CHECK(stride > 0 && dilation > 0 && padding >= 0,
              "Conv2d: needs stride >= 1, dilation >= 1, padding >= 0; got {}, {}, {}", stride,
              dilation, padding);
  TRANQ_CHECK(groups > 0 && in_channels % groups == 0 && out_channels % groups == 0,
              "Conv2d: groups={} must divide in_channels={} and out_channels={}", groups,
              in_channels, out_channels);
  TRANQ_CHECK(is_floating(dtype), "Conv2d: dtype must be f32 or f64, got {}", dtype_name(dtype));
  params_.stride_h = params_.stride_w = stride;
  params_.pad_h = params_.pad_w = padding;
  params_.dilation_h = params_.dilation_w = dilation;
  params_.groups = groups;
  weight_ = register_parameter(
      "weight",
      Tensor::empty({out_channels, in_channels / groups, kernel_size, kernel_size}, dtype));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_channels}, dtype));
  Rng rng(seed ? *seed : next_default_seed());
  reset_parameters(rng);
}

void Conv2d::reset_parameters(Rng& rng) {
  init::kaiming_uniform_(weight_, rng, std::sqrt(5.0));
  if (bias_.defined()) {
    const double bound =
        1.0 / std::sqrt(static_cast<double>(init::fan(weight_, init::FanMode::fan_in)));
    init::uniform_(bias_, -bound, bound, rng);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  TRANQ_CHECK(x.dim() == 4 && x.size(1) == in_channels_,
              "Conv2d: expected input [N, {}, H, W], got {}", in_channels_, tensor_str(x));
  return ops::conv2d(x, weight_, bias_, params_, compute_precision());
}

}  // namespace tranq
