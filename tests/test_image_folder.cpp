// JPEG folder data sets (datasets/image_folder.h): the directory scan and the per-sample
// transform (crop geometry: test_crop_boxes.cpp). Every file is generated here in a fresh
// temporary directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "datasets/image_folder.h"
#include "datasets/jpeg.h"
#include "datasets/resize.h"
#include "datasets/sources.h"
#include "datasets/transforms.h"

using namespace tranq;
using namespace tranq::data;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("tranq_jpeg_" + std::string(info->test_suite_name()) +
                                             "_" + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }
  void write(const std::string& rel, const Bytes& b) const {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::FILE* f = std::fopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr) << p;
    if (!b.empty()) {
      ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size());
    }
    std::fclose(f);
  }
  fs::path dir_;
};

// Photo-like content: smooth gradients plus a little deterministic texture.
Bytes photo_rgb(int64_t h, int64_t w, uint64_t seed) {
  Rng rng(seed);
  Bytes p(static_cast<size_t>(h * w * 3));
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        const double v = 60 + 120.0 * (x + 2 * y * (c + 1)) / (w + 2 * h * (c + 1)) +
                         static_cast<double>(rng.below(16));
        p[static_cast<size_t>((y * w + x) * 3 + c)] = static_cast<uint8_t>(v);
      }
    }
  }
  return p;
}

Bytes jpeg_of(const Bytes& pixels, int64_t h, int64_t w, int components, int quality = 95) {
  return encode_jpeg(pixels.data(), w, h, components, quality);
}

FolderTransform eval_transform(int64_t size, int64_t resize) {
  FolderTransform t;
  t.train = false;
  t.size = size;
  t.resize = resize;
  t.norm = imagenet_normalization();
  return t;
}

// The reference for one sample at full decoding scale, step by step: decode, crop box, resample
// (train: crop first, as torchvision does), flip, normalise.
std::vector<float> reference_sample(const Bytes& file, const FolderTransform& t, Rng& rng) {
  const RgbImage img = decode_jpeg(file.data(), file.size(), 1, "ref");
  const int64_t S = t.size;
  Bytes out(static_cast<size_t>(S * S * 3));
  bool flip = false;
  if (t.train) {
    const CropBox b = random_resized_crop_box(img.height, img.width, rng, t.scale_lo, t.scale_hi,
                                              t.ratio_lo, t.ratio_hi);
    Bytes crop;
    for (int64_t y = b.top; y < b.top + b.height; ++y) {
      const uint8_t* row = &img.pixels[static_cast<size_t>((y * img.width + b.left) * 3)];
      crop.insert(crop.end(), row, row + b.width * 3);
    }
    resize_bilinear(crop.data(), b.height, b.width, 3, {0, 0, b.height, b.width}, out.data(), S, S);
    flip = t.horizontal_flip && rng.bernoulli(0.5);
  } else {
    resize_bilinear_box(img.pixels.data(), img.height, img.width, 3,
                        eval_crop_box_exact(img.height, img.width, t.resize, S), ResizeEdge::kImage,
                        out.data(), S, S);
  }
  std::vector<float> chw(static_cast<size_t>(3 * S * S));
  const PixelNormalizer norm(t.norm, 3);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x)
        chw[(c * S + y) * S + x] = norm(c, out[(y * S + (flip ? S - 1 - x : x)) * 3 + c]);
  return chw;
}

// ---------------------------------------------------------------------------------------------
// Scan

TEST_F(ImageFolderTest, ScanOrdersClassesAndFilesAsTorchvision) {
  const Bytes dummy = {1, 2, 3};  // the scan never opens files
  write("root/b_class/x.jpeg", dummy);
  write("root/a_class/2.jpg", dummy);
  write("root/a_class/1.JPEG", dummy);
  write("root/a_class/notes.txt", dummy);
  write("root/a_class/sub/0.jpg", dummy);  // after the files of a_class itself (os.walk order)
  write("root/a_class/sub/1.png", dummy);
  write("root/B/y.Jpg", dummy);  // uppercase sorts before lowercase
  write("root/readme.txt", dummy);
  fs::create_directories(dir_ / "root/empty_class");
  const ImageFolder f = scan_image_folder(path("root"));
  EXPECT_EQ(f.root, path("root"));
  ASSERT_EQ(f.classes, (std::vector<std::string>{"B", "a_class", "b_class", "empty_class"}));
  const std::vector<std::pair<std::string, int32_t>> want = {{"root/B/y.Jpg", 0},
                                                             {"root/a_class/1.JPEG", 1},
                                                             {"root/a_class/2.jpg", 1},
                                                             {"root/a_class/sub/0.jpg", 1},
                                                             {"root/b_class/x.jpeg", 2}};
  ASSERT_EQ(f.samples.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(f.samples[i].path, path(want[i].first)) << i;
    EXPECT_EQ(f.samples[i].label, want[i].second) << i;
  }
  EXPECT_EQ(f.ignored_files, 3);  // notes.txt, 1.png, readme.txt
  EXPECT_EQ(f.ignored_example, path("root/a_class/notes.txt")) << "the bytewise first";
  EXPECT_EQ(ignored_files_note(f),
            "3 files ignored, e.g. '" + path("root/a_class/notes.txt") + "'");
}

TEST_F(ImageFolderTest, ScanErrorsNameTheDirectoryAndTheLayout) {
  auto expect_io_error = [](const std::string& dir) {
    try {
      scan_image_folder(dir);
      ADD_FAILURE() << "no error for " << dir;
    } catch (const IoError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(dir), std::string::npos) << msg;
      EXPECT_NE(msg.find("DIR/<class>/*.jpg"), std::string::npos) << msg;
    }
  };
  expect_io_error(path("missing"));
  fs::create_directories(dir_ / "empty");
  expect_io_error(path("empty"));
  write("flat/a.jpg", {1});  // images but no class directory
  expect_io_error(path("flat"));
  write("noimages/cls/a.txt", {1});
  expect_io_error(path("noimages"));
  write("afile", {1});
  expect_io_error(path("afile"));
}

TEST_F(ImageFolderTest, ScanWithTheTrainingClassesKeepsTheirLabels) {
  const Bytes dummy = {1, 2, 3};
  for (const char* c : {"a", "b", "c"}) write(std::string("train/") + c + "/x.jpg", dummy);
  // val lacks class b: its c images must keep label 2 (c), not become 1 (b).
  write("val/a/1.jpg", dummy);
  write("val/c/2.jpg", dummy);
  write("val/c/3.jpg", dummy);
  write("val/readme.txt", dummy);
  const std::vector<std::string> classes = list_image_classes(path("train"));
  ASSERT_EQ(classes, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(list_image_classes(path("val")), (std::vector<std::string>{"a", "c"}));
  const ImageFolder f = scan_image_folder(path("val"), classes, path("train"));
  EXPECT_EQ(f.root, path("val"));
  EXPECT_EQ(f.classes, classes);  // num_classes of the split is the training split's
  const std::vector<std::pair<std::string, int32_t>> want = {
      {"val/a/1.jpg", 0}, {"val/c/2.jpg", 2}, {"val/c/3.jpg", 2}};
  ASSERT_EQ(f.samples.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(f.samples[i].path, path(want[i].first)) << i;
    EXPECT_EQ(f.samples[i].label, want[i].second) << i;
  }
  EXPECT_EQ(f.ignored_files, 1);
  // Its own scan would label c as 1: the mismatch this overload exists for.
  EXPECT_EQ(scan_image_folder(path("val")).samples.back().label, 1);
  // The given list is the label order, whatever its order.
  const ImageFolder g = scan_image_folder(path("val"), {"c", "a"}, "list");
  ASSERT_EQ(g.samples.size(), 3u);
  EXPECT_EQ(g.samples[0].path, path("val/c/2.jpg"));
  EXPECT_EQ(g.samples[0].label, 0);
  EXPECT_EQ(g.samples[2].path, path("val/a/1.jpg"));
  EXPECT_EQ(g.samples[2].label, 1);
}

TEST_F(ImageFolderTest, ScanWithTheTrainingClassesRefusesAnUnknownClass) {
  const Bytes dummy = {1, 2, 3};
  for (const char* c : {"a", "b", "c"}) write(std::string("train/") + c + "/x.jpg", dummy);
  write("val/a/1.jpg", dummy);
  fs::create_directories(dir_ / "val/d");  // even without images: it would be a 4th class
  try {
    scan_image_folder(path("val"), list_image_classes(path("train")), path("train"));
    ADD_FAILURE() << "an evaluation class unknown to training was accepted";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'" + path("val/d") + "' is not a class of '" + path("train") + "'"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("add '" + path("train/d") + "'"), std::string::npos) << msg;
  }
  // Class directories without any image: IoError saying it holds no samples.
  fs::remove_all(dir_ / "val");
  fs::create_directories(dir_ / "val/b");
  try {
    scan_image_folder(path("val"), {"a", "b", "c"}, path("train"));
    ADD_FAILURE() << "an empty split was accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path("val") + "' holds no samples"), std::string::npos)
        << e.what();
  }
}

// A training class whose files are all of other types would train silently with no sample of
// it: refused, naming it, the extensions read and an ignored file. The evaluation split may
// lack a class.
TEST_F(ImageFolderTest, TrainingClassWithoutJpegIsRefusedByName) {
  const Bytes dummy = {1, 2, 3};
  write("data/train/a/x.jpg", dummy);
  write("data/train/b/only.png", dummy);
  write("data/train/b/more.png", dummy);
  write("data/train/c/x.jpeg", dummy);
  fs::create_directories(dir_ / "data/train/d");  // no file at all
  write("data/val/a/1.jpg", dummy);
  write("data/val/c/2.jpg", dummy);
  fs::create_directories(dir_ / "data/val/b");  // b has no evaluation image: allowed
  // The scan itself keeps the classes (their labels) and counts what it ignored.
  const ImageFolder f = scan_image_folder(path("data/train"));
  ASSERT_EQ(f.classes, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(f.ignored_files, 2);
  EXPECT_EQ(f.ignored_example, path("data/train/b/more.png"));
  for (const char* name : {"folder", "imagenet"}) {
    for (bool augment : {true, false}) {
      SourceOptions o;
      o.augment = augment;
      try {
        open_dataset(name, path("data"), "train", o);
        ADD_FAILURE() << name << ": a training class without images was accepted";
      } catch (const ValueError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(path("data/train")), std::string::npos) << msg;
        EXPECT_NE(msg.find("classes 'b', 'd' (2 of 4 classes)"), std::string::npos) << msg;
        EXPECT_NE(msg.find("only .jpg and .jpeg files are read"), std::string::npos) << msg;
        EXPECT_NE(msg.find("2 files ignored, e.g. '" + path("data/train/b/more.png") + "'"),
                  std::string::npos)
            << msg;
      }
    }
    const auto test = open_dataset(name, path("data"), "test", SourceOptions{});
    EXPECT_EQ(test->size(), 2);
    EXPECT_EQ(test->num_classes(), 4);
  }
  // With images in every class, training opens.
  write("data/train/b/y.JPG", dummy);
  write("data/train/d/z.jpg", dummy);
  const auto train = open_dataset("folder", path("data"), "train", SourceOptions{});
  EXPECT_EQ(train->size(), 4);
  // Many empty classes: ten are named, the rest counted.
  for (int i = 0; i < 12; ++i) fs::create_directories(dir_ / ("many/train/e" + std::to_string(i)));
  write("many/train/full/x.jpg", dummy);
  write("many/val/full/x.jpg", dummy);
  try {
    open_dataset("folder", path("many"), "train", SourceOptions{});
    ADD_FAILURE() << "empty classes accepted";
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'e0', 'e1', 'e10', 'e11', 'e2'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'e7' and 2 more (12 of 13 classes)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("ignored"), std::string::npos) << msg;
  }
}

TEST_F(ImageFolderTest, FolderWithoutAnyJpegNamesAnIgnoredFile) {
  write("root/a/x.png", {1});
  try {
    scan_image_folder(path("root"));
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("holds no samples"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1 file ignored, e.g. '" + path("root/a/x.png") + "'"), std::string::npos)
        << msg;
  }
}

// ---------------------------------------------------------------------------------------------
// load_folder_sample

TEST_F(ImageFolderTest, EvalOnSolidColourGivesTheNormalisedColour) {
  const int64_t H = 48, W = 64;
  Bytes rgb(static_cast<size_t>(H * W * 3));
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = 200;
    rgb[i + 1] = 100;
    rgb[i + 2] = 50;
  }
  write("solid.jpg", jpeg_of(rgb, H, W, 3));
  const FolderTransform t = eval_transform(32, 36);
  std::vector<float> out(3 * 32 * 32);
  Rng rng(1);
  std::string error;
  ASSERT_TRUE(load_folder_sample(path("solid.jpg"), t, rng, out.data(), &error)) << error;
  EXPECT_EQ(rng.counter(), 0u);  // eval draws nothing
  const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  const int colour[3] = {200, 100, 50};
  for (int c = 0; c < 3; ++c) {
    const float want = (colour[c] / 255.0f - mean[c]) / sd[c];
    for (int64_t i = 0; i < 32 * 32; ++i) {
      // JPEG (YCbCr rounding) may move a flat colour by a level or two.
      ASSERT_NEAR(out[c * 32 * 32 + i], want, 2.5f / 255.0f / sd[c]) << "channel " << c;
    }
  }
}

TEST_F(ImageFolderTest, TrainAndEvalEqualTheStepByStepPipelineAtFullScale) {
  const int64_t H = 120, W = 160;
  const Bytes file = jpeg_of(photo_rgb(H, W, 3), H, W, 3, 90);
  write("p.jpg", file);
  FolderTransform t;
  t.size = 96;  // every box of a 120 x 160 image is decoded at full size (96 * 2 > 160)
  t.norm = imagenet_normalization();
  int flips = 0;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    Rng a(seed), b(seed);
    std::vector<float> got(3 * 96 * 96);
    std::string error;
    ASSERT_TRUE(load_folder_sample(path("p.jpg"), t, a, got.data(), &error)) << error;
    const std::vector<float> want = reference_sample(file, t, b);
    ASSERT_EQ(got, want) << "seed " << seed;
    EXPECT_EQ(a.counter(), b.counter());
    Rng c(seed);
    random_resized_crop_box(H, W, c);
    flips += c.bernoulli(0.5);
  }
  EXPECT_GT(flips, 0);  // both branches of the flip were compared
  EXPECT_LT(flips, 12);
  t = eval_transform(96, 110);
  Rng a(0), b(0);
  std::vector<float> got(3 * 96 * 96);
  ASSERT_TRUE(load_folder_sample(path("p.jpg"), t, a, got.data(), nullptr));
  EXPECT_EQ(got, reference_sample(file, t, b));
}

TEST_F(ImageFolderTest, ScaledDecodingStaysCloseToFullScale) {
  // 1200 x 900, eval 64 of 73: box ~ 789 px >= 8 * 64, decoded at 1/8 (150 x 113).
  const int64_t H = 900, W = 1200;
  Bytes rgb(static_cast<size_t>(H * W * 3));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c)
        rgb[(y * W + x) * 3 + c] = static_cast<uint8_t>(30 + (x * (c + 1) + y * (3 - c)) / 20);
  const Bytes file = jpeg_of(rgb, H, W, 3, 95);
  write("big.jpg", file);
  for (bool train : {false, true}) {
    FolderTransform t = eval_transform(64, 73);
    t.train = train;
    t.scale_lo = 0.5;  // large boxes: scaled decoding in every draw
    t.norm = {};       // plain pixel / 255
    Rng a(3), b(3);
    std::vector<float> got(3 * 64 * 64);
    ASSERT_TRUE(load_folder_sample(path("big.jpg"), t, a, got.data(), nullptr));
    const std::vector<float> want = reference_sample(file, t, b);
    float worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LE(worst * 255.0f, 3.5f) << (train ? "train" : "eval");
  }
}

TEST_F(ImageFolderTest, DeterministicForTheSameRng) {
  write("p.jpg", jpeg_of(photo_rgb(90, 70, 5), 90, 70, 3));
  FolderTransform t;
  t.size = 40;
  t.norm = imagenet_normalization();
  std::vector<float> x(3 * 40 * 40), y(x.size()), z(x.size());
  Rng a(77), b(77), c(78);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(load_folder_sample(path("p.jpg"), t, a, x.data(), nullptr));
    ASSERT_TRUE(load_folder_sample(path("p.jpg"), t, b, y.data(), nullptr));
    ASSERT_TRUE(load_folder_sample(path("p.jpg"), t, c, z.data(), nullptr));
    EXPECT_EQ(x, y);
    EXPECT_NE(x, z);
  }
}

TEST_F(ImageFolderTest, OddSizesAndGrayscaleWork) {
  write("odd.jpg", jpeg_of(photo_rgb(53, 37, 8), 53, 37, 3));  // 37 wide, 53 high
  Bytes gray(static_cast<size_t>(37 * 53));
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(40 + i % 150);
  write("gray.jpg", jpeg_of(gray, 53, 37, 1));
  FolderTransform t;
  t.size = 64;  // upsampling
  t.norm = imagenet_normalization();
  const Normalization n = t.norm;
  for (const char* name : {"odd.jpg", "gray.jpg"}) {
    for (bool train : {true, false}) {
      t.train = train;
      std::vector<float> out(3 * 64 * 64, NAN);
      Rng rng(1);
      std::string error;
      ASSERT_TRUE(load_folder_sample(path(name), t, rng, out.data(), &error)) << error;
      for (int64_t i = 0; i < 64 * 64; ++i) {
        float pix[3];
        for (int c = 0; c < 3; ++c) {
          const float v = out[c * 64 * 64 + i];
          ASSERT_TRUE(std::isfinite(v)) << name;
          pix[c] = (v * n.std[c] + n.mean[c]) * 255.0f;  // back to the pixel value
          ASSERT_GE(pix[c], -0.01f);
          ASSERT_LE(pix[c], 255.01f);
        }
        if (std::string(name) == "gray.jpg") {
          ASSERT_NEAR(pix[0], pix[1], 1e-3f);
          ASSERT_NEAR(pix[0], pix[2], 1e-3f);
        }
      }
    }
  }
}

TEST_F(ImageFolderTest, BadFilesReturnFalseWithThePath) {
  const Bytes good = jpeg_of(photo_rgb(64, 64, 2), 64, 64, 3, 90);
  Bytes junk(300);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 7);
  write("corrupt.jpg", junk);
  write("truncated.jpg",
        Bytes(good.begin(), good.begin() + static_cast<long>(good.size() * 2 / 3)));
  write("empty.jpg", {});
  Bytes zero_width = good;  // frame header FFC0: length (2), precision (1), height (2), width (2)
  for (size_t i = 0; i + 8 < zero_width.size(); ++i) {
    if (zero_width[i] == 0xFF && zero_width[i + 1] == 0xC0) {
      zero_width[i + 7] = zero_width[i + 8] = 0;
      break;
    }
  }
  write("zero_width.jpg", zero_width);
  fs::create_directories(dir_ / "dir.jpg");
  FolderTransform t;
  t.size = 32;
  std::vector<float> out(3 * 32 * 32);
  for (const char* name :
       {"corrupt.jpg", "truncated.jpg", "empty.jpg", "zero_width.jpg", "missing.jpg", "dir.jpg"}) {
    for (bool train : {true, false}) {
      t.train = train;
      Rng rng(0);
      std::string error;
      EXPECT_FALSE(load_folder_sample(path(name), t, rng, out.data(), &error)) << name;
      EXPECT_EQ(error.rfind(path(name) + ": ", 0), 0u) << error;  // starts with "PATH: "
    }
  }
}

TEST_F(ImageFolderTest, DecompressionBombIsABadFile) {
  // A valid 16x16 file whose frame header (SOF0, found by walking the markers) claims
  // 65000x65000: ~200 MB per sample even decoded at 1/8.
  Bytes file = jpeg_of(photo_rgb(16, 16, 3), 16, 16, 3, 90);
  size_t i = 2;
  while (i + 9 < file.size() && file[i] == 0xFF && file[i + 1] != 0xC0)
    i += 2 + (size_t{file[i + 2]} << 8 | file[i + 3]);
  ASSERT_TRUE(i + 9 < file.size() && file[i + 1] == 0xC0);
  file[i + 5] = file[i + 7] = 65000 >> 8;
  file[i + 6] = file[i + 8] = 65000 & 0xFF;
  write("bomb.jpg", file);
  FolderTransform t;
  t.size = 32;
  std::vector<float> out(3 * 32 * 32);
  for (bool train : {true, false}) {
    t.train = train;
    t.resize = 36;
    Rng rng(0);
    std::string error;
    EXPECT_FALSE(load_folder_sample(path("bomb.jpg"), t, rng, out.data(), &error));
    EXPECT_EQ(error.rfind(path("bomb.jpg") + ": ", 0), 0u) << error;
    EXPECT_NE(error.find("decompression bomb"), std::string::npos) << error;
  }
}

TEST_F(ImageFolderTest, BadArgumentsThrowValueError) {
  write("p.jpg", jpeg_of(photo_rgb(16, 16, 1), 16, 16, 3));
  std::vector<float> out(3 * 16 * 16);
  Rng rng(0);
  FolderTransform t;
  t.size = 0;
  EXPECT_THROW(load_folder_sample(path("p.jpg"), t, rng, out.data(), nullptr), ValueError);
  t = eval_transform(16, 8);  // resize < size
  EXPECT_THROW(load_folder_sample(path("p.jpg"), t, rng, out.data(), nullptr), ValueError);
  t = FolderTransform();
  t.size = 16;
  t.scale_lo = 0.9;
  t.scale_hi = 0.5;
  EXPECT_THROW(load_folder_sample(path("p.jpg"), t, rng, out.data(), nullptr), ValueError);
  t = FolderTransform();
  t.size = 16;
  t.norm.mean = {0.5f, 0.5f};
  t.norm.std = {0.5f, 0.5f};
  EXPECT_THROW(load_folder_sample(path("p.jpg"), t, rng, out.data(), nullptr), ValueError);
  EXPECT_THROW(load_folder_sample(path("p.jpg"), FolderTransform(), rng, nullptr, nullptr),
               ValueError);
}

TEST(ImageFolder, ImagenetNormalization) {
  const Normalization n = imagenet_normalization();
  EXPECT_EQ(n.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(n.std, (std::vector<float>{0.229f, 0.224f, 0.225f}));
}

}  // namespace
