#include "models/mobilenet_v2.h"

#include <cmath>

#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/functional.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "models/torchvision_init.h"

namespace tranq::models {

std::shared_ptr<Sequential> conv_bn_relu6(int64_t in_channels, int64_t out_channels,
                                          int64_t kernel_size, int64_t stride, int64_t groups,
                                          DType dtype) {
  auto s = std::make_shared<Sequential>();
  s->push_back(std::make_shared<Conv2d>(in_channels, out_channels, kernel_size, stride,
                                        (kernel_size - 1) / 2, 1, groups, false, dtype));
  s->push_back(std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, dtype));
  s->push_back(std::make_shared<ReLU6>());
  return s;
}

InvertedResidual::InvertedResidual(int64_t in_channels, int64_t out_channels, int64_t stride,
                                   int64_t expand_ratio, DType dtype)
    : use_residual_(stride == 1 && in_channels == out_channels) {
  TRANQ_CHECK(stride == 1 || stride == 2, "InvertedResidual: stride must be 1 or 2, got {}",
              stride);
  TRANQ_CHECK(expand_ratio >= 1, "InvertedResidual: expand_ratio must be >= 1, got {}",
              expand_ratio);
  // torchvision: hidden_dim = int(round(inp * expand_ratio)); exact for integer ratios.
  const int64_t hidden = in_channels * expand_ratio;
  auto conv = std::make_shared<Sequential>();
  if (expand_ratio != 1) conv->push_back(conv_bn_relu6(in_channels, hidden, 1, 1, 1, dtype));
  conv->push_back(conv_bn_relu6(hidden, hidden, 3, stride, hidden, dtype));
  conv->push_back(std::make_shared<Conv2d>(hidden, out_channels, 1, 1, 0, 1, 1, false, dtype));
  conv->push_back(std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, dtype));
  register_module("conv", conv);
}

Tensor InvertedResidual::forward(const Tensor& x) {
  Tensor y = children()[0].second->forward(x);
  return use_residual_ ? ops::add(x, y) : y;
}

MobileNetV2::MobileNetV2(int64_t in_channels, int64_t num_classes, uint64_t seed, DType dtype,
                         double dropout) {
  TRANQ_CHECK(in_channels > 0 && num_classes > 0,
              "MobileNetV2: in_channels and num_classes must be positive, got {} and {}",
              in_channels, num_classes);
  // {expand ratio t, channels c, repeats n, first stride s}, torchvision's table.
  struct Setting {
    int64_t t, c, n, s;
  };
  const Setting settings[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  const int64_t first_channels = 32, last_channels = 1280;  // _make_divisible at width 1.0

  auto features = std::make_shared<Sequential>();
  features->push_back(conv_bn_relu6(in_channels, first_channels, 3, 2, 1, dtype));
  int64_t channels = first_channels;
  for (const Setting& st : settings) {
    for (int64_t i = 0; i < st.n; ++i) {
      features->push_back(
          std::make_shared<InvertedResidual>(channels, st.c, i == 0 ? st.s : 1, st.t, dtype));
      channels = st.c;
    }
  }
  features->push_back(conv_bn_relu6(channels, last_channels, 1, 1, 1, dtype));
  register_module("features", features);

  auto classifier = std::make_shared<Sequential>();
  classifier->push_back(
      std::make_shared<Dropout>(dropout, hash_combine(seed, init::stream_id("classifier.0"))));
  classifier->push_back(std::make_shared<Linear>(last_channels, num_classes, true, dtype));
  register_module("classifier", classifier);
  torchvision_init(*this, seed, LinearInit::normal_0_01);
}

Tensor MobileNetV2::forward(const Tensor& x) {
  auto& c = children();
  Tensor y = c[0].second->forward(x);
  y = ops::flatten(ops::global_avg_pool2d(y), 1);
  return c[1].second->forward(y);
}

std::shared_ptr<MobileNetV2> mobilenet_v2(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                          DType dtype) {
  return std::make_shared<MobileNetV2>(in_channels, num_classes, seed, dtype);
}

}  // namespace tranq::models
