#include "datasets/transforms.h"

#include <cstring>

#include "core/error.h"

namespace tranq::data {
namespace {

void check_image(const Tensor& image, const char* op) {
  check_defined(image, op, "image");
  check_dtype(image, DType::u8, op, "image");
  TRANQ_CHECK(image.dim() == 3, "{}: expected a u8 [C, H, W] image, got {}", op, tensor_str(image));
}

}  // namespace

Rng sample_rng(uint64_t seed, int64_t epoch, int64_t index) {
  return Rng(
      hash_combine(hash_combine(seed, static_cast<uint64_t>(epoch)), static_cast<uint64_t>(index)));
}

CropFlip draw_augmentation(const AugmentOptions& opt, Rng& rng) {
  TRANQ_CHECK(opt.crop_padding >= 0, "crop padding must be >= 0, got {}", opt.crop_padding);
  CropFlip c;
  c.padding = opt.crop_padding;
  if (opt.crop_padding > 0) {
    const uint64_t range = static_cast<uint64_t>(2 * opt.crop_padding + 1);
    c.offset_y = static_cast<int64_t>(rng.below(range));
    c.offset_x = static_cast<int64_t>(rng.below(range));
  }
  if (opt.horizontal_flip) c.flip = rng.bernoulli(0.5);
  return c;
}

Tensor crop_padded(const Tensor& image, int64_t padding, int64_t offset_y, int64_t offset_x) {
  check_image(image, "crop_padded");
  TRANQ_CHECK(padding >= 0 && offset_y >= 0 && offset_y <= 2 * padding && offset_x >= 0 &&
                  offset_x <= 2 * padding,
              "crop_padded: offsets ({}, {}) must lie in [0, 2 * padding = {}]", offset_y, offset_x,
              2 * padding);
  Tensor src = image.contiguous();
  const int64_t C = src.size(0), H = src.size(1), W = src.size(2);
  Tensor out = Tensor::zeros({C, H, W}, DType::u8);
  const uint8_t* s = src.data<uint8_t>();
  uint8_t* d = out.data<uint8_t>();
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y + offset_y - padding;
      if (sy < 0 || sy >= H) continue;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = x + offset_x - padding;
        if (sx >= 0 && sx < W) d[(c * H + y) * W + x] = s[(c * H + sy) * W + sx];
      }
    }
  }
  return out;
}

Tensor flip_horizontal(const Tensor& image) {
  check_image(image, "flip_horizontal");
  Tensor src = image.contiguous();
  const int64_t C = src.size(0), H = src.size(1), W = src.size(2);
  Tensor out = Tensor::empty({C, H, W}, DType::u8);
  const uint8_t* s = src.data<uint8_t>();
  uint8_t* d = out.data<uint8_t>();
  for (int64_t row = 0; row < C * H; ++row) {
    for (int64_t x = 0; x < W; ++x) d[row * W + x] = s[row * W + (W - 1 - x)];
  }
  return out;
}

Tensor random_crop(const Tensor& image, int64_t padding, Rng& rng) {
  CropFlip c = draw_augmentation({padding, false}, rng);
  return crop_padded(image, padding, c.offset_y, c.offset_x);
}

Tensor random_horizontal_flip(const Tensor& image, Rng& rng) {
  return rng.bernoulli(0.5) ? flip_horizontal(image) : image.contiguous();
}

PixelNormalizer::PixelNormalizer(const Normalization& norm, int64_t channels) {
  TRANQ_CHECK(channels > 0, "PixelNormalizer: channels must be positive, got {}", channels);
  const size_t n = norm.mean.size();
  TRANQ_CHECK(norm.std.size() == n && (n == 0 || n == 1 || n == static_cast<size_t>(channels)),
              "normalisation has {} mean and {} std values for {}-channel images; expected both "
              "empty, both 1, or both {}",
              n, norm.std.size(), channels, channels);
  lut_.resize(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const float mean = n == 0 ? 0.0f : norm.mean[n == 1 ? 0 : c];
    const float sd = n == 0 ? 1.0f : norm.std[n == 1 ? 0 : c];
    TRANQ_CHECK(sd > 0.0f, "normalisation std of channel {} must be positive, got {}", c, sd);
    for (int v = 0; v < 256; ++v) lut_[c][v] = (static_cast<float>(v) / 255.0f - mean) / sd;
  }
}

Tensor normalize_images(const Tensor& images, const Normalization& norm) {
  check_defined(images, "normalize_images", "images");
  check_dtype(images, DType::u8, "normalize_images", "images");
  TRANQ_CHECK(images.dim() >= 3, "normalize_images: expected u8 [..., C, H, W], got {}",
              tensor_str(images));
  Tensor src = images.contiguous();
  const int64_t C = src.size(-3);
  const int64_t plane = src.size(-2) * src.size(-1);
  PixelNormalizer lut(norm, C);
  Tensor out = Tensor::empty(src.shape(), DType::f32);
  const uint8_t* s = src.data<uint8_t>();
  float* d = out.data<float>();
  const int64_t n = src.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = lut((i / plane) % C, s[i]);
  return out;
}

void augment_normalize(const uint8_t* src, int64_t C, int64_t H, int64_t W, const CropFlip& choice,
                       const PixelNormalizer& norm, float* dst) {
  const int64_t dy = choice.offset_y - choice.padding;
  const int64_t dx = choice.offset_x - choice.padding;
  for (int64_t c = 0; c < C; ++c) {
    const float zero = norm(c, 0);  // padding is black before normalisation, as in torchvision
    for (int64_t y = 0; y < H; ++y) {
      float* out = dst + (c * H + y) * W;
      const int64_t sy = y + dy;
      if (sy < 0 || sy >= H) {
        for (int64_t x = 0; x < W; ++x) out[x] = zero;
        continue;
      }
      const uint8_t* row = src + (c * H + sy) * W;
      for (int64_t x = 0; x < W; ++x) {
        // The flip mirrors the cropped image: output column x shows cropped column W-1-x.
        const int64_t sx = (choice.flip ? W - 1 - x : x) + dx;
        out[x] = (sx >= 0 && sx < W) ? norm(c, row[sx]) : zero;
      }
    }
  }
}

}  // namespace tranq::data
