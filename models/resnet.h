#pragma once
// ResNets with BasicBlocks: torchvision's resnet18/resnet34 (ImageNet stem) and the CIFAR
// resnet20 of He et al. 2016 §4.2 (3x3 stem, 16/32/64 channels), with 1x1-conv + BN projection
// shortcuts where the shape changes (the paper's option B; its CIFAR models use option A,
// zero-padding identity shortcuts: 269,722 parameters for 10 classes against 272,474 here).
// Module names and state-dict layout follow torchvision ("layer1.0.conv1.weight",
// "layer2.0.downsample.0.weight", "fc.bias", ...).
//
// Every forward() reads its children through the registered pointers (Module::children()), so a
// child replaced in the registry in place (same name and position), e.g. a Conv2d swapped for a
// quantized one, is the module that runs.
#include <cstdint>
#include <memory>
#include <vector>

#include "layers/module.h"

namespace tranq::models {

// conv3x3-bn-relu-conv3x3-bn, plus the shortcut, then relu. Children in torchvision's order:
// conv1, bn1, relu, conv2, bn2, and downsample (Sequential: 1x1 conv stride s, BN) only when
// stride != 1 or in_channels != out_channels.
class BasicBlock : public Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1,
             DType dtype = DType::f32);
  Tensor forward(const Tensor& x) override;
  bool has_downsample() const { return has_downsample_; }

 private:
  bool has_downsample_;
};

enum class ResNetStem {
  cifar,     // conv 3x3 s1 p1, bn, relu
  imagenet,  // conv 7x7 s2 p3, bn, relu, maxpool 3 s2 p1
};

struct ResNetConfig {
  ResNetStem stem;
  std::vector<int64_t> blocks;  // BasicBlocks per stage
  std::vector<int64_t> widths;  // channels per stage; stages after the first start with stride 2
};

// Children: conv1, bn1, relu, [maxpool], layer1..layerN (Sequential of BasicBlocks), avgpool
// (AdaptiveAvgPool2d(1)), fc (Linear). forward flattens between avgpool and fc.
// Initialised as torchvision does (models/torchvision_init.h, Linear left at PyTorch's default).
class ResNet : public Module {
 public:
  ResNet(const ResNetConfig& config, int64_t in_channels, int64_t num_classes, uint64_t seed,
         DType dtype = DType::f32);
  Tensor forward(const Tensor& x) override;
};

ResNetConfig resnet20_config();  // cifar stem, [3, 3, 3], widths [16, 32, 64]
ResNetConfig resnet18_config();  // imagenet stem, [2, 2, 2, 2], widths [64, 128, 256, 512]
ResNetConfig resnet34_config();  // imagenet stem, [3, 4, 6, 3], widths [64, 128, 256, 512]

std::shared_ptr<ResNet> resnet20(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                 DType dtype = DType::f32);
std::shared_ptr<ResNet> resnet18(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                 DType dtype = DType::f32);
std::shared_ptr<ResNet> resnet34(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                 DType dtype = DType::f32);

}  // namespace tranq::models
