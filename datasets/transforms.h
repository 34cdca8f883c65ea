#pragma once
// Per-sample image transforms, torchvision-compatible in meaning:
//   RandomCrop(size, padding): zero-pad every side by `padding`, then cut the original size at
//     a uniformly random offset (offset_y, offset_x) in [0, 2 * padding].
//   RandomHorizontalFlip(p = 0.5) applied to the cropped image.
//   ToTensor + Normalize: x = (pixel / 255 - mean[c]) / std[c] in f32.
// Randomness comes from a caller-supplied Rng so that a sample's augmentation is a pure function
// of its stream (see sample_rng). Draw order, shared by every function here: offset_y, offset_x
// (each rng.below(2 * padding + 1), drawn only when padding > 0), then the flip
// (rng.bernoulli(0.5), drawn only when flipping is enabled).
#include <array>
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "datasets/dataset.h"

namespace tranq::data {

// The stream of one sample in one epoch.
Rng sample_rng(uint64_t seed, int64_t epoch, int64_t index);

// The random choices of one sample's augmentation.
struct CropFlip {
  int64_t padding = 0;
  int64_t offset_y = 0, offset_x = 0;  // in [0, 2 * padding]
  bool flip = false;
};
CropFlip draw_augmentation(const AugmentOptions& opt, Rng& rng);

// u8 [C, H, W] -> u8 [C, H, W]: the crop of the zero-padded image at (offset_y, offset_x).
Tensor crop_padded(const Tensor& image, int64_t padding, int64_t offset_y, int64_t offset_x);
// u8 [C, H, W] mirrored left-right.
Tensor flip_horizontal(const Tensor& image);
// The random versions, drawing from rng in the order documented above.
Tensor random_crop(const Tensor& image, int64_t padding, Rng& rng);
Tensor random_horizontal_flip(const Tensor& image, Rng& rng);

// Per-channel lookup table pixel -> normalised float, so that the fused path and the
// step-by-step path give bit-identical values.
class PixelNormalizer {
 public:
  // Validates norm against the channel count: mean and std both empty (x = pixel / 255), both of
  // size 1 (same statistics for every channel) or both of size channels; every std > 0.
  PixelNormalizer(const Normalization& norm, int64_t channels);
  int64_t channels() const { return static_cast<int64_t>(lut_.size()); }
  float operator()(int64_t c, uint8_t v) const { return lut_[c][v]; }

 private:
  std::vector<std::array<float, 256>> lut_;
};

// u8 [..., C, H, W] -> f32 of the same shape, normalised.
Tensor normalize_images(const Tensor& images, const Normalization& norm);

// The loader's fused path: crop, flip and normalise one CHW image from src into dst (C*H*W
// floats), equal to normalize(flip(crop(image))) with the same choices.
void augment_normalize(const uint8_t* src, int64_t channels, int64_t height, int64_t width,
                       const CropFlip& choice, const PixelNormalizer& norm, float* dst);

}  // namespace tranq::data
