// JPEG decoding/encoding (datasets/jpeg.h) and the resampling of the image pipeline
// (datasets/resize.h); the crop geometry is tested in test_image_folder.cpp. Expected values are
// computed by hand in comments, or by naive reference loops written here; the resize was also
// checked bit-exact against PIL 9.4 on random images, integer and fractional boxes, 1/3/4 channels
// (not part of this test: no Python here).
#include <gtest/gtest.h>

// clang-format off
#include <cstdio>
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "datasets/jpeg.h"
#include "datasets/resize.h"
#include "image_test_util.h"

using namespace tranq;
using namespace tranq::data;

namespace {

using test::Bytes;
using test::max_abs_diff;

// A smooth RGB image: R along x, G along y, B along the diagonal.
Bytes gradient_rgb(int64_t h, int64_t w) {
  Bytes p(static_cast<size_t>(h * w * 3));
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* q = &p[static_cast<size_t>((y * w + x) * 3)];
      q[0] = static_cast<uint8_t>(20 + 200 * x / (w - 1));
      q[1] = static_cast<uint8_t>(30 + 180 * y / (h - 1));
      q[2] = static_cast<uint8_t>(40 + 150 * (x + y) / (w + h - 2));
    }
  }
  return p;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

void expect_format_error_naming(const std::function<void()>& f, const std::string& name) {
  try {
    f();
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

// A YCCK file written with libjpeg directly (the library's encoder writes CMYK only). stored_cmyk
// are the values as stored, i.e. already Adobe-inverted.
Bytes encode_ycck(const Bytes& stored_cmyk, int w, int h) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, JCS_YCCK);
  jpeg_set_quality(&c, 95, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&stored_cmyk[c.next_scanline * w * 4]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes out(buf, buf + size);
  free(buf);
  return out;
}

// PIL's BILINEAR resize of a whole-pixel box, written out naively in double (box semantics:
// taps may reach outside the box), rounding after each pass as PIL's 8-bit path does.
Bytes reference_resize(const Bytes& src, int64_t H, int64_t W, int64_t C, const CropBox& b,
                       int64_t dh, int64_t dw) {
  auto weights = [](int64_t in_size, double in0, double in1, int64_t out, int64_t o,
                    int64_t* first) {
    const double scale = (in1 - in0) / out, fs = std::max(scale, 1.0), support = fs;
    const double center = in0 + (o + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(center + support + 0.5));
    std::vector<double> w;
    double sum = 0;
    for (int64_t x = lo; x < hi; ++x) {
      w.push_back(std::max(0.0, 1.0 - std::fabs((x - center + 0.5) / fs)));
      sum += w.back();
    }
    for (double& v : w) v /= sum;
    *first = lo;
    return w;
  };
  Bytes tmp(static_cast<size_t>(H * dw * C)), out(static_cast<size_t>(dh * dw * C));
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < dw; ++x) {
      int64_t f;
      auto w = weights(W, b.left, b.left + b.width, dw, x, &f);
      for (int64_t c = 0; c < C; ++c) {
        double s = 0;
        for (size_t i = 0; i < w.size(); ++i) s += w[i] * src[((y * W) + f + i) * C + c];
        tmp[(y * dw + x) * C + c] =
            static_cast<uint8_t>(std::clamp(std::floor(s + 0.5), 0.0, 255.0));
      }
    }
  }
  for (int64_t y = 0; y < dh; ++y) {
    int64_t f;
    auto w = weights(H, b.top, b.top + b.height, dh, y, &f);
    for (int64_t x = 0; x < dw * C; ++x) {
      double s = 0;
      for (size_t i = 0; i < w.size(); ++i) s += w[i] * tmp[(f + i) * dw * C + x];
      out[y * dw * C + x] = static_cast<uint8_t>(std::clamp(std::floor(s + 0.5), 0.0, 255.0));
    }
  }
  return out;
}

Bytes random_image(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Bytes p(static_cast<size_t>(n));
  for (auto& v : p) v = static_cast<uint8_t>(rng.below(256));
  return p;
}

// ---------------------------------------------------------------------------------------------
// JPEG

TEST(Jpeg, RoundTripAtEveryScale) {
  const int64_t W = 101, H = 67;  // not multiples of 8: the scaled sizes must round up
  const Bytes rgb = gradient_rgb(H, W);
  const Bytes file = encode_jpeg(rgb.data(), W, H, 3, 95);
  const JpegHeader hdr = read_jpeg_header(file.data(), file.size(), "grad.jpg");
  EXPECT_EQ(hdr.width, W);
  EXPECT_EQ(hdr.height, H);
  EXPECT_EQ(hdr.components, 3);
  for (int d : {1, 2, 4, 8}) {
    const RgbImage img = decode_jpeg(file.data(), file.size(), d, "grad.jpg");
    ASSERT_EQ(img.width, ceil_div(W, d)) << d;
    ASSERT_EQ(img.height, ceil_div(H, d)) << d;
    ASSERT_EQ(img.pixels.size(), static_cast<size_t>(img.width * img.height * 3));
    // The DCT-scaled output approximates the mean of each d x d block (libjpeg pads the last
    // partial block by repeating the edge pixel).
    int worst = 0;
    for (int64_t y = 0; y < img.height; ++y) {
      for (int64_t x = 0; x < img.width; ++x) {
        for (int c = 0; c < 3; ++c) {
          double s = 0;
          for (int64_t dy = 0; dy < d; ++dy) {
            for (int64_t dx = 0; dx < d; ++dx) {
              const int64_t sy = std::min(y * d + dy, H - 1), sx = std::min(x * d + dx, W - 1);
              s += rgb[(sy * W + sx) * 3 + c];
            }
          }
          const double ref = s / (d * d);
          worst = std::max(worst, static_cast<int>(std::lround(
                                      std::fabs(img.pixels[(y * img.width + x) * 3 + c] - ref))));
        }
      }
    }
    EXPECT_LE(worst, 5) << "scale 1/" << d;
  }
}

TEST(Jpeg, GrayscaleDecodesToEqualChannels) {
  const int64_t W = 40, H = 24;
  Bytes gray(static_cast<size_t>(W * H));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) gray[y * W + x] = static_cast<uint8_t>(10 + 5 * x + 2 * y);
  const Bytes file = encode_jpeg(gray.data(), W, H, 1, 95);
  EXPECT_EQ(read_jpeg_header(file.data(), file.size(), "g.jpg").components, 1);
  const RgbImage img = decode_jpeg(file.data(), file.size(), 1, "g.jpg");
  ASSERT_EQ(img.width, W);
  ASSERT_EQ(img.height, H);
  int worst = 0;
  for (int64_t i = 0; i < W * H; ++i) {
    const uint8_t* p = &img.pixels[i * 3];
    EXPECT_EQ(p[0], p[1]);
    EXPECT_EQ(p[0], p[2]);
    worst = std::max(worst, std::abs(p[0] - gray[i]));
  }
  EXPECT_LE(worst, 2);
}

// Expected RGB of ink amounts (C, M, Y, K): (255 - C)(255 - K) / 255 per channel.
void expect_cmyk_patches(const Bytes& file, int64_t W, const char* what) {
  const RgbImage img = decode_jpeg(file.data(), file.size(), 1, "cmyk.jpg");
  ASSERT_EQ(img.width, W);
  auto at = [&](int64_t y, int64_t x, int c) { return img.pixels[(y * img.width + x) * 3 + c]; };
  // Left patch: pure cyan ink, no black -> (0, 255, 255).
  // Right patch: C 0, M 128, Y 255, K 64 -> R = 255 * 191 / 255 = 191, G = 127 * 191 / 255 =
  // 95.1, B = 0.
  const int expected[2][3] = {{0, 255, 255}, {191, 95, 0}};
  for (int patch = 0; patch < 2; ++patch) {
    const int64_t x = patch * 16 + 8, y = 8;  // centre of the patch, away from the edge
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(at(y, x, c), expected[patch][c], 3) << what << " patch " << patch << " ch " << c;
    }
  }
}

TEST(Jpeg, CmykAndYcckDecodeToRgbAsAdobeInverted) {
  const int64_t W = 32, H = 16;
  Bytes ink(static_cast<size_t>(W * H * 4));
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      uint8_t* q = &ink[(y * W + x) * 4];
      const uint8_t left[4] = {255, 0, 0, 0}, right[4] = {0, 128, 255, 64};
      std::copy(x < 16 ? left : right, (x < 16 ? left : right) + 4, q);
    }
  }
  const Bytes file = encode_jpeg(ink.data(), W, H, 4, 98);
  EXPECT_EQ(read_jpeg_header(file.data(), file.size(), "cmyk.jpg").components, 4);
  expect_cmyk_patches(file, W, "CMYK");

  Bytes stored(ink.size());
  for (size_t i = 0; i < ink.size(); ++i) stored[i] = static_cast<uint8_t>(255 - ink[i]);
  const Bytes ycck = encode_ycck(stored, W, H);
  EXPECT_EQ(read_jpeg_header(ycck.data(), ycck.size(), "ycck.jpg").components, 4);
  expect_cmyk_patches(ycck, W, "YCCK");
}

TEST(Jpeg, CorruptDataThrowsFormatErrorNamingTheFile) {
  const std::string name = "/data/train/n01/bad_file.jpg";
  const Bytes junk = random_image(500, 3);
  expect_format_error_naming([&] { read_jpeg_header(junk.data(), junk.size(), name); }, name);
  expect_format_error_naming([&] { decode_jpeg(junk.data(), junk.size(), 1, name); }, name);
  expect_format_error_naming([&] { decode_jpeg(nullptr, 0, 1, name); }, name);

  // A valid file whose frame header claims zero width.
  const Bytes rgb = gradient_rgb(16, 16);
  Bytes file = encode_jpeg(rgb.data(), 16, 16, 3, 90);
  size_t sof = 0;
  for (size_t i = 0; i + 1 < file.size(); ++i) {
    if (file[i] == 0xFF && file[i + 1] == 0xC0) {
      sof = i;
      break;
    }
  }
  ASSERT_GT(sof, 0u);
  file[sof + 7] = 0;  // FFC0, length (2), precision (1), height (2), width (2)
  file[sof + 8] = 0;
  expect_format_error_naming([&] { decode_jpeg(file.data(), file.size(), 1, name); }, name);
}

TEST(Jpeg, TruncatedFileThrowsFormatError) {
  const Bytes rgb = random_image(64 * 64 * 3, 4);  // noise: the scan data dwarfs the header
  const Bytes file = encode_jpeg(rgb.data(), 64, 64, 3, 90);
  const std::string name = "cut.jpg";
  const Bytes half(file.begin(), file.begin() + static_cast<long>(file.size() / 2));
  // The header survives, the scan data does not.
  EXPECT_EQ(read_jpeg_header(half.data(), half.size(), name).width, 64);
  try {
    decode_jpeg(half.data(), half.size(), 1, name);
    ADD_FAILURE() << "a truncated file decoded";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  // Scaled decoding reads the same data: also an error.
  expect_format_error_naming([&] { decode_jpeg(half.data(), half.size(), 8, name); }, name);
  const Bytes head(file.begin(), file.begin() + 20);  // inside the header
  expect_format_error_naming([&] { read_jpeg_header(head.data(), head.size(), name); }, name);
}

TEST(Jpeg, ChooseScaleDenom) {
  EXPECT_EQ(choose_scale_denom(500, 375, 224, 224), 1);    // 375 < 448
  EXPECT_EQ(choose_scale_denom(1000, 800, 224, 224), 2);   // 800 >= 448, < 896
  EXPECT_EQ(choose_scale_denom(1000, 900, 224, 224), 4);   // 900 >= 896, 1000 < 1792
  EXPECT_EQ(choose_scale_denom(1792, 1792, 224, 224), 8);  // exactly 8 * 224
  EXPECT_EQ(choose_scale_denom(1791, 1792, 224, 224), 4);
  EXPECT_EQ(choose_scale_denom(100, 100, 224, 224), 1);  // already upsampling: full size
  EXPECT_EQ(choose_scale_denom(4000, 300, 224, 32), 8);  // per-axis targets
  EXPECT_EQ(choose_scale_denom(4000, 300, 224, 64), 4);
  EXPECT_THROW(choose_scale_denom(0, 10, 1, 1), ValueError);
}

TEST(Jpeg, BadArgumentsAreValueErrors) {
  const Bytes rgb = gradient_rgb(8, 8);
  const Bytes file = encode_jpeg(rgb.data(), 8, 8, 3, 90);
  EXPECT_THROW(decode_jpeg(file.data(), file.size(), 3, "x.jpg"), ValueError);
  EXPECT_THROW(encode_jpeg(rgb.data(), 8, 8, 2, 90), ValueError);
  EXPECT_THROW(encode_jpeg(rgb.data(), 8, 8, 3, 0), ValueError);
  EXPECT_THROW(encode_jpeg(rgb.data(), 0, 8, 3, 90), ValueError);
}

namespace {

// A small valid JPEG whose baseline frame header (SOF0) is rewritten to claim width x height:
// the header reads fine, the scan data is that of a 16x16 image. Walks the markers, so that
// an FF C0 pair inside a table cannot be mistaken for the frame header.
Bytes jpeg_claiming(int64_t width, int64_t height) {
  const Bytes rgb = gradient_rgb(16, 16);
  Bytes file = encode_jpeg(rgb.data(), 16, 16, 3, 90);
  size_t i = 2;  // after SOI
  while (i + 9 < file.size() && file[i] == 0xFF && file[i + 1] != 0xC0) {
    i += 2 + (size_t{file[i + 2]} << 8 | file[i + 3]);
  }
  EXPECT_TRUE(i + 9 < file.size() && file[i] == 0xFF && file[i + 1] == 0xC0) << "no SOF0";
  if (i + 9 >= file.size()) return file;
  // FFC0, length (2), precision (1), height (2), width (2)
  file[i + 5] = static_cast<uint8_t>(height >> 8);
  file[i + 6] = static_cast<uint8_t>(height);
  file[i + 7] = static_cast<uint8_t>(width >> 8);
  file[i + 8] = static_cast<uint8_t>(width);
  return file;
}

std::string decode_error(const Bytes& file, int denom, const std::string& name) {
  try {
    decode_jpeg(file.data(), file.size(), denom, name);
  } catch (const FormatError& e) {
    return e.what();
  }
  ADD_FAILURE() << "decoded without error at 1/" << denom;
  return "";
}

}  // namespace

TEST(Jpeg, DecompressionBombsAreRefusedBeforeAllocating) {
  EXPECT_EQ(kMaxJpegPixels, 178956970);  // PIL's DecompressionBombError threshold
  const std::string name = "/data/train/n01/bomb.jpg";
  // The reviewer's case: ~1.5 KB claiming 65000x65000 (~200 MB even at 1/8 scale).
  const Bytes bomb = jpeg_claiming(65000, 65000);
  ASSERT_LT(bomb.size(), 2000u);
  const JpegHeader h = read_jpeg_header(bomb.data(), bomb.size(), name);
  EXPECT_EQ(h.width, 65000);  // the header itself is readable: the limit is on decoding
  EXPECT_EQ(h.height, 65000);
  for (int denom : {1, 2, 4, 8}) {
    const std::string msg = decode_error(bomb, denom, name);
    EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("65000x65000"), std::string::npos) << msg;
    EXPECT_NE(msg.find("178956970"), std::string::npos) << msg;
    EXPECT_NE(msg.find("decompression bomb"), std::string::npos) << msg;
  }
  // The boundary: 10922 x 16385 is exactly the limit and is decoded (libjpeg fills the scan
  // that ends at the EOI marker with grey, a tolerated warning); one column more is refused.
  const Bytes at_limit = jpeg_claiming(10922, 16385);
  const RgbImage img = decode_jpeg(at_limit.data(), at_limit.size(), 8, name);
  EXPECT_EQ(img.width, 1366);   // ceil(10922 / 8)
  EXPECT_EQ(img.height, 2049);  // ceil(16385 / 8)
  const std::string over = decode_error(jpeg_claiming(10923, 16385), 8, name);
  EXPECT_NE(over.find("10923x16385"), std::string::npos) << over;
  EXPECT_NE(over.find("decompression bomb"), std::string::npos) << over;
}

// ---------------------------------------------------------------------------------------------
// Resize

TEST(Resize, IdentityAndUnscaledCropAreExact) {
  const int64_t H = 7, W = 9, C = 3;
  const Bytes src = random_image(H * W * C, 1);
  Bytes dst(src.size());
  resize_bilinear(src.data(), H, W, C, {0, 0, H, W}, dst.data(), H, W);
  EXPECT_EQ(dst, src);
  // A box resampled at its own size is a plain crop (weights 1 and 0).
  const CropBox b{2, 3, 4, 5};
  Bytes crop(static_cast<size_t>(4 * 5 * C)), ref;
  resize_bilinear(src.data(), H, W, C, b, crop.data(), 4, 5);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 5 * C; ++x) ref.push_back(src[((y + 2) * W + 3) * C + x]);
  EXPECT_EQ(crop, ref);
}

TEST(Resize, ConstantImageStaysConstant) {
  for (int64_t C = 1; C <= 4; ++C) {
    const int64_t H = 31, W = 45;
    Bytes src(static_cast<size_t>(H * W * C));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(37 + 50 * (i % C));
    for (auto [dh, dw] : {std::pair<int64_t, int64_t>{7, 5}, {60, 90}, {31, 13}}) {
      Bytes dst(static_cast<size_t>(dh * dw * C));
      resize_bilinear(src.data(), H, W, C, {3, 4, 20, 30}, dst.data(), dh, dw);
      for (size_t i = 0; i < dst.size(); ++i) {
        ASSERT_EQ(dst[i], 37 + 50 * (i % C)) << "C " << C << " size " << dh << "x" << dw;
      }
    }
  }
}

// 8 -> 4 pixels: scale 2, support 2. Output 0: centre 1, taps 0..2 with triangle weights 0.75,
// 0.75, 0.25 -> 3/7, 3/7, 1/7. Output 1: centre 3, taps 1..4 -> 1/8, 3/8, 3/8, 1/8. Output 2:
// centre 5, taps 3..6. Output 3: centre 7, taps 5..7 -> 1/7, 3/7, 3/7.
//   (3*10 + 3*50 + 90) / 7 = 38.57 -> 39      (50 + 3*90 + 3*130 + 170) / 8 = 110
//   (130 + 3*170 + 3*210 + 250) / 8 = 190     (210 + 3*250 + 3*20) / 7 = 145.7 -> 146
TEST(Resize, Downsample2xMatchesHandComputedPilValues) {
  const Bytes line = {10, 50, 90, 130, 170, 210, 250, 20};
  const Bytes expected = {39, 110, 190, 146};
  Bytes out(4);
  resize_bilinear(line.data(), 1, 8, 1, {0, 0, 1, 8}, out.data(), 1, 4);  // a row: x pass
  EXPECT_EQ(out, expected);
  resize_bilinear(line.data(), 8, 1, 1, {0, 0, 8, 1}, out.data(), 4, 1);  // a column: y pass
  EXPECT_EQ(out, expected);
  // Box semantics: the box [2, 6) of the row still reads pixel 1 (centre 3, taps 1..4) -> 110;
  // with taps confined to the box (crop, then resize): centre 1 of the crop, taps 2..4 with
  // 3/7, 3/7, 1/7 -> (3*90 + 3*130 + 170) / 7 = 118.6 -> 119.
  Bytes two(2);
  resize_bilinear(line.data(), 1, 8, 1, {0, 2, 1, 4}, two.data(), 1, 2);
  EXPECT_EQ(two[0], 110);
  resize_bilinear_box(line.data(), 1, 8, 1, {0, 2, 1, 4}, ResizeEdge::kBox, two.data(), 1, 2);
  EXPECT_EQ(two[0], 119);
  const Bytes cropped(line.begin() + 2, line.begin() + 6);
  Bytes ref(2);
  resize_bilinear(cropped.data(), 1, 4, 1, {0, 0, 1, 4}, ref.data(), 1, 2);
  EXPECT_EQ(two, ref);
}

// 2 -> 4 pixels: scale 0.5, support 1. Centres 0.25, 0.75, 1.25, 1.75. Output 0 reads pixel 0
// only (weight 0.75, normalised to 1); output 1: 0.75 a + 0.25 b; output 2: 0.25 a + 0.75 b;
// output 3: b. With a = 0, b = 200: 0, 50, 150, 200.
TEST(Resize, UpsampleMatchesHandComputedPilValues) {
  const Bytes line = {0, 200};
  Bytes out(4);
  resize_bilinear(line.data(), 1, 2, 1, {0, 0, 1, 2}, out.data(), 1, 4);
  EXPECT_EQ(out, (Bytes{0, 50, 150, 200}));
  resize_bilinear(line.data(), 2, 1, 1, {0, 0, 2, 1}, out.data(), 4, 1);
  EXPECT_EQ(out, (Bytes{0, 50, 150, 200}));
}

TEST(Resize, MatchesNaiveReferenceOnRandomImages) {
  Rng rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t C = 1 + static_cast<int64_t>(rng.below(4));
    const int64_t H = 1 + static_cast<int64_t>(rng.below(40)),
                  W = 1 + static_cast<int64_t>(rng.below(40));
    CropBox b;
    b.top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(H)));
    b.left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(W)));
    b.height = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(H - b.top)));
    b.width = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(W - b.left)));
    const int64_t dh = 1 + static_cast<int64_t>(rng.below(50)),
                  dw = 1 + static_cast<int64_t>(rng.below(50));
    const Bytes src = random_image(H * W * C, 100 + trial);
    Bytes dst(static_cast<size_t>(dh * dw * C));
    resize_bilinear(src.data(), H, W, C, b, dst.data(), dh, dw);
    // Fixed point vs double: a value sitting on .5 may round either way.
    EXPECT_LE(max_abs_diff(dst, reference_resize(src, H, W, C, b, dh, dw)), 1) << "trial " << trial;
  }
}

TEST(Resize, RejectsBoxOutsideImage) {
  const Bytes src(12, 0);
  Bytes dst(4);
  EXPECT_THROW(resize_bilinear(src.data(), 3, 4, 1, {0, 1, 3, 4}, dst.data(), 2, 2), ValueError);
  EXPECT_THROW(resize_bilinear(src.data(), 3, 4, 1, {0, 0, 0, 4}, dst.data(), 2, 2), ValueError);
  EXPECT_THROW(resize_bilinear(src.data(), 3, 4, 5, {0, 0, 3, 4}, dst.data(), 2, 2), ValueError);
}

}  // namespace
