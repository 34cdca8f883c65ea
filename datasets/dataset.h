#pragma once
// The plain data types of datasets/: an in-memory image classification set (uint8 pixels,
// int32 labels), normalisation statistics and augmentation options. The standard sets are
// loaded by name in datasets/registry.h; floats are made per batch by datasets/loader.h.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tranq::data {

// Images are kept as stored on disk, channel-major: u8 [N, C, H, W], contiguous.
struct ImageSet {
  Tensor images;  // u8 [N, C, H, W]
  Tensor labels;  // i32 [N], each in [0, num_classes)
  int64_t num_classes = 0;
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
  int64_t channels() const { return images.defined() ? images.size(1) : 0; }
  int64_t height() const { return images.defined() ? images.size(2) : 0; }
  int64_t width() const { return images.defined() ? images.size(3) : 0; }
};

// Per-channel mean and standard deviation on the [0, 1] pixel scale, as in torchvision's
// Normalize: x = (pixel / 255 - mean[c]) / std[c]. Empty vectors mean "no normalisation"
// (plain pixel / 255); a single value applies to every channel.
struct Normalization {
  std::vector<float> mean, std;
};

// Data augmentation applied to training samples (torchvision RandomCrop(size, padding) with
// zero fill, then RandomHorizontalFlip(p = 0.5)).
struct AugmentOptions {
  int64_t crop_padding = 0;
  bool horizontal_flip = false;
};

}  // namespace tranq::data
