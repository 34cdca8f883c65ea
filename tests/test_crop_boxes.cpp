// The crop geometry of the image-folder transforms (datasets/resize.h): RandomResizedCrop's
// boxes and draw order, and the evaluation resize-then-centre-crop, against torchvision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "datasets/resize.h"
#include "image_test_util.h"

using namespace tranq;
using namespace tranq::data;

namespace {

using test::Bytes;
using test::max_abs_diff;

Bytes random_image(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Bytes p(static_cast<size_t>(n));
  for (auto& v : p) v = static_cast<uint8_t>(rng.below(256));
  return p;
}

// ---------------------------------------------------------------------------------------------
// Crop geometry

TEST(RandomResizedCrop, InsideImageAndWithinBounds) {
  const int64_t H = 375, W = 500;
  const double area = static_cast<double>(H * W);
  Rng rng(5);
  double min_frac = 1, max_frac = 0;
  for (int i = 0; i < 4000; ++i) {
    const CropBox b = random_resized_crop_box(H, W, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_GT(b.height, 0);
    ASSERT_GT(b.width, 0);
    ASSERT_LE(b.top + b.height, H);
    ASSERT_LE(b.left + b.width, W);
    // w and h are each within 0.5 of sqrt(area * s * r) and sqrt(area * s / r).
    const double w = static_cast<double>(b.width), h = static_cast<double>(b.height);
    ASSERT_GE((w + 0.5) * (h + 0.5), 0.08 * area);
    ASSERT_LE((w - 0.5) * (h - 0.5), area);
    ASSERT_GE((w + 0.5) / (h - 0.5), 3.0 / 4.0);
    ASSERT_LE((w - 0.5) / (h + 0.5), 4.0 / 3.0);
    min_frac = std::min(min_frac, w * h / area);
    max_frac = std::max(max_frac, w * h / area);
  }
  EXPECT_LT(min_frac, 0.1);  // the whole range is used
  EXPECT_GT(max_frac, 0.9);
}

TEST(RandomResizedCrop, FollowsTheDocumentedDrawOrder) {
  const int64_t H = 375, W = 500;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng a(seed), b(seed);
    const CropBox got = random_resized_crop_box(H, W, a);
    // torchvision's get_params, written out: the first attempt that fits.
    CropBox want;
    bool found = false;
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
      const double ta = H * W * b.uniform(0.08, 1.0);
      const double ar = std::exp(b.uniform(std::log(3.0 / 4.0), std::log(4.0 / 3.0)));
      const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(ta * ar)));
      const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(ta / ar)));
      if (w > 0 && w <= W && h > 0 && h <= H) {
        want = {static_cast<int64_t>(b.below(H - h + 1)), 0, h, w};
        want.left = static_cast<int64_t>(b.below(W - w + 1));
        found = true;
      }
    }
    ASSERT_TRUE(found);
    EXPECT_EQ(got.top, want.top);
    EXPECT_EQ(got.left, want.left);
    EXPECT_EQ(got.height, want.height);
    EXPECT_EQ(got.width, want.width);
    EXPECT_EQ(a.counter(), b.counter());
  }
}

TEST(RandomResizedCrop, DeterministicForAFixedRng) {
  Rng a(42), b(42), c(43);
  int differ = 0;
  for (int i = 0; i < 20; ++i) {
    const CropBox x = random_resized_crop_box(300, 400, a),
                  y = random_resized_crop_box(300, 400, b);
    const CropBox z = random_resized_crop_box(300, 400, c);
    EXPECT_TRUE(x.top == y.top && x.left == y.left && x.height == y.height && x.width == y.width);
    differ += (x.top != z.top || x.width != z.width);
  }
  EXPECT_GT(differ, 15);
}

TEST(RandomResizedCrop, FallbackCentresAClampedCrop) {
  // 1 x 1000: every attempt needs h >= round(sqrt(80 / (4/3))) = 8 > 1, so all 10 fail (20
  // draws). Fallback: ratio 1000 > 4/3 -> h = 1, w = round(1 * 4/3) = 1, left = (1000 - 1) // 2.
  Rng rng(7);
  CropBox b = random_resized_crop_box(1, 1000, rng);
  EXPECT_EQ(rng.counter(), 20u);
  EXPECT_EQ(b.top, 0);
  EXPECT_EQ(b.left, 499);
  EXPECT_EQ(b.height, 1);
  EXPECT_EQ(b.width, 1);
  // 1000 x 1: ratio 0.001 < 3/4 -> w = 1, h = round(1 / 0.75) = 1, top = 499.
  b = random_resized_crop_box(1000, 1, rng);
  EXPECT_EQ(b.top, 499);
  EXPECT_EQ(b.left, 0);
  EXPECT_EQ(b.height, 1);
  EXPECT_EQ(b.width, 1);
  // 10 x 1000 with scale (0.9, 1): h >= sqrt(9000 / (4/3)) = 82 > 10 always. Fallback h = 10,
  // w = round(10 * 4/3) = 13, left = (1000 - 13) // 2 = 493.
  b = random_resized_crop_box(10, 1000, rng, 0.9, 1.0);
  EXPECT_EQ(b.top, 0);
  EXPECT_EQ(b.left, 493);
  EXPECT_EQ(b.height, 10);
  EXPECT_EQ(b.width, 13);
  EXPECT_THROW(random_resized_crop_box(10, 10, rng, 0.5, 0.4), ValueError);
  EXPECT_THROW(random_resized_crop_box(10, 10, rng, 0.1, 1.0, 0.0, 1.0), ValueError);
}

TEST(EvalCropBox, MatchesTorchvisionResizeThenCenterCrop) {
  // 500 x 375 (W x H), Resize(256): the shorter side H = 375 -> 256, W -> int(256 * 500 / 375)
  // = int(341.33) = 341. CenterCrop(224): top = int(round(32 / 2.0)) = 16, left =
  // int(round(117 / 2.0)) = round(58.5) = 58 (Python rounds halves to even). In the original:
  //   top = 16 * 375 / 256 = 23.4375, height = 224 * 375 / 256 = 328.125,
  //   left = 58 * 500 / 341 = 85.044, width = 224 * 500 / 341 = 328.446.
  const BoxF f = eval_crop_box_exact(375, 500, 256, 224);
  EXPECT_DOUBLE_EQ(f.top, 23.4375);
  EXPECT_DOUBLE_EQ(f.height, 328.125);
  EXPECT_DOUBLE_EQ(f.left, 58.0 * 500 / 341);
  EXPECT_DOUBLE_EQ(f.width, 224.0 * 500 / 341);
  CropBox b = eval_crop_box(375, 500, 256, 224);
  EXPECT_EQ(b.top, 23);
  EXPECT_EQ(b.left, 85);
  EXPECT_EQ(b.height, 328);
  EXPECT_EQ(b.width, 328);
  b = eval_crop_box(500, 375, 256, 224);  // portrait: the same, transposed
  EXPECT_EQ(b.top, 85);
  EXPECT_EQ(b.left, 23);
  EXPECT_EQ(b.height, 328);
  EXPECT_EQ(b.width, 328);
  // 256 x 343: no resize; left = round(119 / 2.0) = round(59.5) = 60 (even).
  b = eval_crop_box(256, 343, 256, 224);
  EXPECT_EQ(b.top, 16);
  EXPECT_EQ(b.left, 60);
  EXPECT_EQ(b.height, 224);
  EXPECT_EQ(b.width, 224);
  EXPECT_THROW(eval_crop_box(256, 256, 200, 224), ValueError);
}

TEST(EvalCropBox, OneResampleOfTheExactBoxEqualsResizeThenCrop) {
  // 40 x 50, Resize(32) -> 32 x 40, CenterCrop(24) at top 4, left 8.
  const int64_t H = 40, W = 50, C = 3;
  const Bytes src = random_image(H * W * C, 9);
  Bytes resized(32 * 40 * C);
  resize_bilinear(src.data(), H, W, C, {0, 0, H, W}, resized.data(), 32, 40);
  Bytes two_step;
  for (int64_t y = 4; y < 28; ++y)
    for (int64_t x = 8 * C; x < 32 * C; ++x) two_step.push_back(resized[y * 40 * C + x]);
  Bytes one_step(24 * 24 * C);
  resize_bilinear_box(src.data(), H, W, C, eval_crop_box_exact(H, W, 32, 24), ResizeEdge::kImage,
                      one_step.data(), 24, 24);
  EXPECT_LE(max_abs_diff(one_step, two_step), 1);
  int equal = 0;
  for (size_t i = 0; i < one_step.size(); ++i) equal += one_step[i] == two_step[i];
  EXPECT_GE(equal, static_cast<int>(one_step.size()) * 99 / 100);
}

}  // namespace
