#include "models/resnet.h"

#include <string>

#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/functional.h"
#include "layers/linear.h"
#include "layers/pooling.h"
#include "layers/sequential.h"
#include "models/torchvision_init.h"

namespace tranq::models {
namespace {

// Positions of BasicBlock's children in registration order.
enum BlockChild : size_t { kConv1, kBn1, kRelu, kConv2, kBn2, kDownsample };

std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride, DType dtype) {
  return std::make_shared<Conv2d>(in, out, 3, stride, 1, 1, 1, false, dtype);
}

}  // namespace

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride, DType dtype)
    : has_downsample_(stride != 1 || in_channels != out_channels) {
  register_module("conv1", conv3x3(in_channels, out_channels, stride, dtype));
  register_module("bn1", std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, dtype));
  register_module("relu", std::make_shared<ReLU>());
  register_module("conv2", conv3x3(out_channels, out_channels, 1, dtype));
  register_module("bn2", std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, dtype));
  if (has_downsample_) {
    auto ds = std::make_shared<Sequential>();
    ds->push_back(
        std::make_shared<Conv2d>(in_channels, out_channels, 1, stride, 0, 1, 1, false, dtype));
    ds->push_back(std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, dtype));
    register_module("downsample", ds);
  }
}

// BN, residual add and ReLU run fused when the children are the stock ones; a model whose
// BN or ReLU was swapped for another module runs the plain chain.
Tensor BasicBlock::forward(const Tensor& x) {
  auto& c = children();
  Module& relu = *c[kRelu].second;
  const bool stock_relu = dynamic_cast<ReLU*>(&relu) != nullptr;
  auto* bn1 = dynamic_cast<BatchNorm2d*>(c[kBn1].second.get());
  auto* bn2 = dynamic_cast<BatchNorm2d*>(c[kBn2].second.get());
  Tensor h = c[kConv1].second->forward(x);
  h = bn1 && stock_relu ? bn1->forward_act(h, Tensor(), true) : relu(c[kBn1].second->forward(h));
  h = c[kConv2].second->forward(h);
  Tensor identity = has_downsample_ ? c[kDownsample].second->forward(x) : x;
  if (bn2 && stock_relu) return bn2->forward_act(h, identity, true);
  return relu(ops::add(c[kBn2].second->forward(h), identity));
}

ResNet::ResNet(const ResNetConfig& config, int64_t in_channels, int64_t num_classes, uint64_t seed,
               DType dtype) {
  TRANQ_CHECK(in_channels > 0 && num_classes > 0,
              "ResNet: in_channels and num_classes must be positive, got {} and {}", in_channels,
              num_classes);
  TRANQ_CHECK(!config.blocks.empty() && config.blocks.size() == config.widths.size(),
              "ResNet: needs one width per stage, got {} stages and {} widths",
              config.blocks.size(), config.widths.size());
  const bool imagenet = config.stem == ResNetStem::imagenet;
  int64_t channels = config.widths[0];
  if (imagenet) {
    register_module("conv1",
                    std::make_shared<Conv2d>(in_channels, channels, 7, 2, 3, 1, 1, false, dtype));
  } else {
    register_module("conv1", conv3x3(in_channels, channels, 1, dtype));
  }
  register_module("bn1", std::make_shared<BatchNorm2d>(channels, 1e-5, 0.1, dtype));
  register_module("relu", std::make_shared<ReLU>());
  if (imagenet) register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  for (size_t stage = 0; stage < config.blocks.size(); ++stage) {
    TRANQ_CHECK(config.blocks[stage] > 0 && config.widths[stage] > 0,
                "ResNet: stage {} needs positive block count and width", stage + 1);
    auto layer = std::make_shared<Sequential>();
    const int64_t width = config.widths[stage];
    for (int64_t b = 0; b < config.blocks[stage]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      layer->push_back(std::make_shared<BasicBlock>(channels, width, stride, dtype));
      channels = width * BasicBlock::expansion;
    }
    register_module("layer" + std::to_string(stage + 1), layer);
  }
  register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  register_module("fc", std::make_shared<Linear>(channels, num_classes, true, dtype));
  torchvision_init(*this, seed, LinearInit::pytorch_default);
}

Tensor ResNet::forward(const Tensor& x) {
  auto& c = children();
  Tensor y = x;
  // Everything up to avgpool runs in order (a stock BN followed by a stock ReLU fused); fc
  // (the last child) needs [N, C].
  for (size_t i = 0; i + 1 < c.size(); ++i) {
    auto* bn = dynamic_cast<BatchNorm2d*>(c[i].second.get());
    if (bn && i + 2 < c.size() && dynamic_cast<ReLU*>(c[i + 1].second.get())) {
      y = bn->forward_act(y, Tensor(), true);
      ++i;
      continue;
    }
    y = c[i].second->forward(y);
  }
  return c.back().second->forward(ops::flatten(y, 1));
}

ResNetConfig resnet20_config() {
  return {ResNetStem::cifar, {3, 3, 3}, {16, 32, 64}};
}
ResNetConfig resnet18_config() {
  return {ResNetStem::imagenet, {2, 2, 2, 2}, {64, 128, 256, 512}};
}
ResNetConfig resnet34_config() {
  return {ResNetStem::imagenet, {3, 4, 6, 3}, {64, 128, 256, 512}};
}

std::shared_ptr<ResNet> resnet20(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                 DType dtype) {
  return std::make_shared<ResNet>(resnet20_config(), in_channels, num_classes, seed, dtype);
}
std::shared_ptr<ResNet> resnet18(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                 DType dtype) {
  return std::make_shared<ResNet>(resnet18_config(), in_channels, num_classes, seed, dtype);
}
std::shared_ptr<ResNet> resnet34(int64_t in_channels, int64_t num_classes, uint64_t seed,
                                 DType dtype) {
  return std::make_shared<ResNet>(resnet34_config(), in_channels, num_classes, seed, dtype);
}

}  // namespace tranq::models
