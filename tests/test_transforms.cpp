// The per-sample transforms: padded crops, flips, normalisation, and the fused path.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "datasets/registry.h"
#include "datasets/transforms.h"

using namespace tranq;
using namespace tranq::data;

namespace {
// 1x4x4 image with pixel(y, x) = 10 * (y + 1) + x + 1: 11 12 13 14 / 21 ... / 41 42 43 44.
Tensor image4() {
  std::vector<uint8_t> v;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) v.push_back(static_cast<uint8_t>(10 * (y + 1) + x + 1));
  return Tensor::from_vector<uint8_t>(v, {1, 4, 4});
}
std::vector<int> as_ints(const Tensor& t) {
  std::vector<int> out;
  for (uint8_t v : t.to_vector<uint8_t>()) out.push_back(v);
  return out;
}
}  // namespace

TEST(Transforms, CropPaddedKnownPixels) {
  const Tensor img = image4();
  // Offset (0, 0) with padding 1 shifts the image down-right by one, zero-filled.
  EXPECT_EQ(as_ints(crop_padded(img, 1, 0, 0)),
            (std::vector<int>{0, 0, 0, 0, 0, 11, 12, 13, 0, 21, 22, 23, 0, 31, 32, 33}));
  // Offset (2, 1): up by one row, no horizontal shift.
  EXPECT_EQ(as_ints(crop_padded(img, 1, 2, 1)),
            (std::vector<int>{21, 22, 23, 24, 31, 32, 33, 34, 41, 42, 43, 44, 0, 0, 0, 0}));
  // The centre offset (padding, padding) is the identity.
  EXPECT_EQ(as_ints(crop_padded(img, 2, 2, 2)), as_ints(img));
  EXPECT_EQ(as_ints(flip_horizontal(img)),
            (std::vector<int>{14, 13, 12, 11, 24, 23, 22, 21, 34, 33, 32, 31, 44, 43, 42, 41}));
  EXPECT_THROW(crop_padded(img, 1, 3, 0), ValueError);
}

TEST(Transforms, RandomCropAndFlipWithFixedRng) {
  const Tensor img = image4();
  // The documented draws: offset_y = below(2p + 1), offset_x = below(2p + 1), then flip.
  Rng probe(1234);
  const int64_t oy = probe.below(5), ox = probe.below(5);
  const bool flip = probe.bernoulli(0.5);
  Rng rng(1234);
  Tensor cropped = random_crop(img, 2, rng);
  Tensor out = random_horizontal_flip(cropped, rng);
  std::vector<int> expect(16);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const int cx = flip ? 3 - x : x;  // flip applies to the cropped image
      const int sy = y + oy - 2, sx = cx + ox - 2;
      expect[y * 4 + x] = (sy >= 0 && sy < 4 && sx >= 0 && sx < 4) ? 10 * (sy + 1) + sx + 1 : 0;
    }
  EXPECT_EQ(as_ints(out), expect);
  EXPECT_EQ(rng.counter(), probe.counter());
  // Over many seeds every offset in [0, 2p] and both flips occur, and nothing else.
  std::vector<int> seen_y(5, 0), seen_flip(2, 0);
  for (uint64_t s = 0; s < 400; ++s) {
    Rng r(s);
    CropFlip c = draw_augmentation({2, true}, r);
    ASSERT_GE(c.offset_y, 0);
    ASSERT_LE(c.offset_y, 4);
    ASSERT_LE(c.offset_x, 4);
    seen_y[c.offset_y]++;
    seen_flip[c.flip]++;
  }
  for (int n : seen_y) EXPECT_GT(n, 40);
  EXPECT_GT(seen_flip[0], 150);
  EXPECT_GT(seen_flip[1], 150);
  // No augmentation draws nothing.
  Rng r(5);
  CropFlip none = draw_augmentation({}, r);
  EXPECT_EQ(r.counter(), 0u);
  EXPECT_EQ(none.offset_y, 0);
  EXPECT_FALSE(none.flip);
}

TEST(Transforms, NormalizationValues) {
  Tensor img = Tensor::from_vector<uint8_t>({0, 255, 51, 102, 0, 255, 204, 153}, {2, 2, 2});
  Tensor f = normalize_images(img, {{0.5f, 0.25f}, {0.5f, 0.125f}});
  std::vector<float> got = f.to_vector<float>();
  const std::vector<float> px = {0, 255, 51, 102, 0, 255, 204, 153};
  for (int i = 0; i < 8; ++i) {
    const float m = i < 4 ? 0.5f : 0.25f, s = i < 4 ? 0.5f : 0.125f;
    EXPECT_FLOAT_EQ(got[i], (px[i] / 255.0f - m) / s) << i;
  }
  EXPECT_FLOAT_EQ(got[1], 1.0f);   // (1 - 0.5) / 0.5
  EXPECT_FLOAT_EQ(got[4], -2.0f);  // (0 - 0.25) / 0.125
  // Empty statistics: plain /255; one value broadcasts over channels.
  EXPECT_FLOAT_EQ(normalize_images(img, {}).to_vector<float>()[2], 0.2f);
  EXPECT_FLOAT_EQ(normalize_images(img, {{0.2f}, {2.0f}}).to_vector<float>()[6], 0.3f);
  EXPECT_THROW(normalize_images(img, {{0.1f, 0.2f, 0.3f}, {1, 1, 1}}), ValueError);
  EXPECT_THROW(normalize_images(img, {{0.1f}, {0.0f}}), ValueError);
}

TEST(Transforms, FusedPathEqualsStepByStep) {
  Rng gen(77);
  std::vector<uint8_t> v(3 * 7 * 5);
  for (auto& x : v) x = static_cast<uint8_t>(gen.below(256));
  Tensor img = Tensor::from_vector<uint8_t>(v, {3, 7, 5});
  const Normalization norm = standard_normalization("cifar10");
  PixelNormalizer lut(norm, 3);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng a = sample_rng(seed, 3, 11), b = sample_rng(seed, 3, 11);
    CropFlip c = draw_augmentation({3, true}, a);
    std::vector<float> fused(v.size());
    augment_normalize(v.data(), 3, 7, 5, c, lut, fused.data());
    Tensor step = normalize_images(random_horizontal_flip(random_crop(img, 3, b), b), norm);
    ASSERT_EQ(fused, step.to_vector<float>()) << "seed " << seed;
  }
}

TEST(Transforms, SampleStreamsDiffer) {
  EXPECT_NE(sample_rng(1, 0, 0).next_u64(), sample_rng(1, 0, 1).next_u64());
  EXPECT_NE(sample_rng(1, 0, 0).next_u64(), sample_rng(1, 1, 0).next_u64());
  EXPECT_NE(sample_rng(1, 0, 0).next_u64(), sample_rng(2, 0, 0).next_u64());
  EXPECT_EQ(sample_rng(1, 2, 3).next_u64(), Rng(hash_combine(hash_combine(1, 2), 3)).next_u64());
}
