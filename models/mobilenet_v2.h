#pragma once
// torchvision's MobileNetV2 (0.14, width_mult 1.0), with the same module tree and state-dict
// names: features.0 (conv-BN-ReLU6), features.1..17 (InvertedResidual, ".conv.<i>"),
// features.18 (1x1 conv-BN-ReLU6 to 1280), classifier.0 (Dropout 0.2), classifier.1 (Linear).
//
// forward() reads children through the registered pointers (see models/resnet.h), so modules
// swapped in the registry in place are the ones that run.
#include <cstdint>
#include <memory>

#include "layers/module.h"
#include "layers/sequential.h"

namespace tranq::models {

// torchvision's Conv2dNormActivation(in, out, kernel, stride, groups, activation=ReLU6):
// Sequential of Conv2d (padding (k-1)/2, no bias), BatchNorm2d, ReLU6 named "0", "1", "2".
std::shared_ptr<Sequential> conv_bn_relu6(int64_t in_channels, int64_t out_channels,
                                          int64_t kernel_size, int64_t stride = 1,
                                          int64_t groups = 1, DType dtype = DType::f32);

// Child "conv" (Sequential). expand_ratio 1: [conv_bn_relu6 depthwise, 1x1 project, BN];
// otherwise [conv_bn_relu6 1x1 expand, conv_bn_relu6 depthwise, 1x1 project, BN]. The input is
// added back when stride == 1 and in_channels == out_channels.
class InvertedResidual : public Module {
 public:
  InvertedResidual(int64_t in_channels, int64_t out_channels, int64_t stride, int64_t expand_ratio,
                   DType dtype = DType::f32);
  Tensor forward(const Tensor& x) override;
  bool use_residual() const { return use_residual_; }

 private:
  bool use_residual_;
};

// Children: features, classifier. forward: features, global average pool, flatten, classifier.
// Initialised as torchvision does (models/torchvision_init.h, classifier Linear N(0, 0.01)).
// The dropout mask stream is seeded from seed as well.
class MobileNetV2 : public Module {
 public:
  MobileNetV2(int64_t in_channels, int64_t num_classes, uint64_t seed, DType dtype = DType::f32,
              double dropout = 0.2);
  Tensor forward(const Tensor& x) override;
};

std::shared_ptr<MobileNetV2> mobilenet_v2(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                          DType dtype = DType::f32);

}  // namespace tranq::models
