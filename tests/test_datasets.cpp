// Readers of the real on-disk formats (IDX plain and gzipped, CIFAR binary) and the registry.
// Every file here is written byte by byte in the test, independently of the library's own
// writers.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/cifar.h"
#include "datasets/dataset.h"
#include "datasets/idx.h"
#include "datasets/registry.h"
#include "datasets/transforms.h"

using namespace tranq;
using namespace tranq::data;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

// A fresh directory per test: ctest runs tests of one binary as separate processes in parallel.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("tranq_data_" + std::string(info->test_suite_name()) +
                                             "_" + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string dir() const { return dir_.string(); }
  fs::path dir_;
};

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

void write_plain(const std::string& path, const Bytes& b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!b.empty()) {  // fwrite's buffer must not be null, even for 0 bytes
    ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size());
  }
  std::fclose(f);
}

Bytes read_bytes(const std::string& path) {
  Bytes b(fs::file_size(path));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  if (!f) return {};
  EXPECT_EQ(std::fread(b.data(), 1, b.size(), f), b.size());
  std::fclose(f);
  return b;
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// pixel(i, y, x) = 7*i + 3*y + x (mod 256): distinct enough to catch any mix-up.
uint8_t idx_pixel(int i, int y, int x) {
  return static_cast<uint8_t>(7 * i + 3 * y + x + 11 * y * x);
}

Bytes idx_images(int n, int rows, int cols) {
  Bytes b;
  put_be32(b, 0x00000803);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x) b.push_back(idx_pixel(i, y, x));
  return b;
}

Bytes idx_labels(const std::vector<int>& labels) {
  Bytes b;
  put_be32(b, 0x00000801);
  put_be32(b, static_cast<uint32_t>(labels.size()));
  for (int l : labels) b.push_back(static_cast<uint8_t>(l));
  return b;
}

// Expects `fn` to throw E with every needle in its message.
template <class E, class F>
void expect_throw_with(F fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception thrown";
  } catch (const E& e) {
    for (const std::string& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "message '" << e.what() << "' lacks '" << n << "'";
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

void check_idx_set(const ImageSet& s, int n, int rows, int cols, const std::vector<int>& labels) {
  ASSERT_EQ(s.images.dtype(), DType::u8);
  ASSERT_EQ(s.images.shape(), (Shape{n, 1, rows, cols}));
  ASSERT_EQ(s.labels.dtype(), DType::i32);
  EXPECT_EQ(s.size(), n);
  EXPECT_EQ(s.num_classes, 10);
  const uint8_t* p = s.images.data<uint8_t>();
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x)
        ASSERT_EQ(p[(i * rows + y) * cols + x], idx_pixel(i, y, x)) << i << " " << y << " " << x;
  EXPECT_EQ(s.labels.to_vector<int32_t>(), std::vector<int32_t>(labels.begin(), labels.end()));
}

}  // namespace

class Idx : public TempDirTest {};

TEST_F(Idx, PlainRoundTrip) {
  const std::vector<int> train_labels = {3, 0, 9, 1, 7};
  write_plain(path("train-images-idx3-ubyte"), idx_images(5, 28, 28));
  write_plain(path("train-labels-idx1-ubyte"), idx_labels(train_labels));
  write_plain(path("t10k-images-idx3-ubyte"), idx_images(2, 28, 28));
  write_plain(path("t10k-labels-idx1-ubyte"), idx_labels({4, 4}));
  check_idx_set(load_dataset("mnist", dir(), "train"), 5, 28, 28, train_labels);
  check_idx_set(load_dataset("fashion-mnist", dir() + "/", "test"), 2, 28, 28, {4, 4});
  // The generic reader takes any size (rows x cols = 4x3 here).
  write_plain(path("odd-images"), idx_images(2, 4, 3));
  check_idx_set(load_idx_pair(path("odd-images"), path("t10k-labels-idx1-ubyte"), 10), 2, 4, 3,
                {4, 4});
}

TEST_F(Idx, GzippedRoundTrip) {
  const std::vector<int> labels = {9, 8, 7};
  write_gz(path("t10k-images-idx3-ubyte.gz"), idx_images(3, 28, 28));
  write_gz(path("t10k-labels-idx1-ubyte.gz"), idx_labels(labels));
  // The stored files really are compressed (gzip magic), so zlib did the decoding.
  const Bytes stored = read_bytes(path("t10k-images-idx3-ubyte.gz"));
  ASSERT_GE(stored.size(), 2u);
  EXPECT_EQ(stored[0], 0x1f);
  EXPECT_EQ(stored[1], 0x8b);
  check_idx_set(load_dataset("fashion-mnist", dir(), "test"), 3, 28, 28, labels);
}

TEST_F(Idx, LibraryWritersProduceTheStandardBytes) {
  const Bytes images = idx_images(3, 2, 5), labels = idx_labels({1, 2, 3});
  write_plain(path("a"), images);
  write_plain(path("b"), labels);
  ImageSet s = load_idx_pair(path("a"), path("b"), 10);
  write_idx_images(path("a2"), s.images, false);
  write_idx_labels(path("b2"), s.labels, false);
  EXPECT_EQ(read_bytes(path("a2")), images);
  EXPECT_EQ(read_bytes(path("b2")), labels);
  write_idx_images(path("a3.gz"), s.images, true);
  write_idx_labels(path("b3.gz"), s.labels, true);
  check_idx_set(load_idx_pair(path("a3.gz"), path("b3.gz"), 10), 3, 2, 5, {1, 2, 3});
}

TEST_F(Idx, TruncatedImageFileIsFormatError) {
  Bytes b = idx_images(4, 5, 5);
  b.resize(b.size() - 1);
  write_plain(path("train-images-idx3-ubyte"), b);
  write_plain(path("train-labels-idx1-ubyte"), idx_labels({1, 2, 3, 4}));
  expect_throw_with<FormatError>([&] { load_dataset("mnist", dir(), "train"); },
                                 {path("train-images-idx3-ubyte"), "truncated", "116"});
  // A cut-short gzip stream is caught by zlib.
  Bytes whole = idx_images(40, 28, 28);
  write_gz(path("full.gz"), whole);
  Bytes gz = read_bytes(path("full.gz"));
  gz.resize(gz.size() / 2);
  write_plain(path("half.gz"), gz);
  expect_throw_with<FormatError>([&] { read_idx_images(path("half.gz")); }, {path("half.gz")});
  // Only a header.
  write_plain(path("short"), Bytes{0, 0, 8});
  expect_throw_with<FormatError>([&] { read_idx_images(path("short")); },
                                 {path("short"), "header"});
}

TEST_F(Idx, WrongMagicIsFormatError) {
  // The label file where the image file should be.
  write_plain(path("train-images-idx3-ubyte"), idx_labels({1, 2}));
  write_plain(path("train-labels-idx1-ubyte"), idx_labels({1, 2}));
  expect_throw_with<FormatError>([&] { load_dataset("mnist", dir(), "train"); },
                                 {path("train-images-idx3-ubyte"), "0x00000801", "0x00000803"});
  write_plain(path("imgs"), idx_images(2, 3, 3));
  expect_throw_with<FormatError>([&] { read_idx_labels(path("imgs")); }, {path("imgs"), "magic"});
}

// The other file of the pair is named as such; the hint never blames a .gz suffix, since gzip
// is recognised by content.
TEST_F(Idx, WrongMagicSaysWhichFileItIs) {
  auto expect_message = [](auto fn, const std::vector<std::string>& has,
                           const std::vector<std::string>& lacks) {
    try {
      fn();
      ADD_FAILURE() << "no exception thrown";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      for (const std::string& n : has)
        EXPECT_NE(msg.find(n), std::string::npos) << "'" << msg << "' lacks '" << n << "'";
      for (const std::string& n : lacks)
        EXPECT_EQ(msg.find(n), std::string::npos) << "'" << msg << "' has '" << n << "'";
    }
  };
  write_plain(path("labels_as_images"), idx_labels({1, 2}));
  expect_message([&] { read_idx_images(path("labels_as_images")); },
                 {path("labels_as_images"), "is an IDX label file",
                  "the images file (magic 0x00000803) is expected here"},
                 {"gzip", ".gz"});
  // Compressed: the same answer, about the content.
  write_gz(path("labels_as_images.gz"), idx_labels({1, 2}));
  expect_message([&] { read_idx_images(path("labels_as_images.gz")); },
                 {"is an IDX label file", "images file"}, {"gzip", "suffix"});
  write_plain(path("images_as_labels"), idx_images(2, 3, 3));
  expect_message([&] { read_idx_labels(path("images_as_labels")); },
                 {path("images_as_labels"), "is an IDX image file",
                  "the labels file (magic 0x00000801) is expected here"},
                 {"gzip", ".gz"});
  // Neither kind: the generic hint.
  Bytes other = idx_labels({1, 2});
  other[3] = 0x0d;
  write_plain(path("other"), other);
  expect_message([&] { read_idx_images(path("other")); },
                 {"is not an IDX image file", "0x0000080d", "expected 0x00000803"},
                 {"gzip", ".gz", "label file"});
}

TEST_F(Idx, LabelCountMismatchIsFormatError) {
  write_plain(path("train-images-idx3-ubyte"), idx_images(3, 28, 28));
  write_plain(path("train-labels-idx1-ubyte"), idx_labels({1, 2}));
  expect_throw_with<FormatError>([&] { load_dataset("mnist", dir(), "train"); },
                                 {path("train-labels-idx1-ubyte"), "2 labels", "3 images"});
}

TEST_F(Idx, LabelOutOfRangeIsFormatError) {
  write_plain(path("train-images-idx3-ubyte"), idx_images(3, 28, 28));
  write_plain(path("train-labels-idx1-ubyte"), idx_labels({1, 10, 2}));
  expect_throw_with<FormatError>([&] { load_dataset("fashion-mnist", dir(), "train"); },
                                 {path("train-labels-idx1-ubyte"), "label 10", "0..9"});
}

TEST_F(Idx, MissingFileIsIoErrorNamingIt) {
  write_plain(path("train-images-idx3-ubyte"), idx_images(1, 2, 2));
  expect_throw_with<IoError>([&] { load_dataset("mnist", dir(), "train"); },
                             {path("train-labels-idx1-ubyte"), "t10k-images-idx3-ubyte"});
  expect_throw_with<IoError>([&] { load_dataset("mnist", dir() + "/nope", "test"); },
                             {"nope/t10k-images-idx3-ubyte", "does not exist"});
  expect_throw_with<IoError>([&] { read_idx_images(path("absent")); }, {path("absent")});
}

TEST_F(Idx, StandardSetsRequire28x28ImagesInBothSplits) {
  write_plain(path("train-labels-idx1-ubyte"), idx_labels({1, 2}));
  write_plain(path("t10k-labels-idx1-ubyte"), idx_labels({1, 2}));
  // The reviewer's files: a 5x5 and a 1x1 train file, 32x32 test images.
  for (int side : {5, 1}) {
    write_plain(path("train-images-idx3-ubyte"), idx_images(2, side, side));
    const std::string found = std::to_string(side) + "x" + std::to_string(side);
    for (const char* name : {"mnist", "fashion-mnist"}) {
      expect_throw_with<FormatError>(
          [&] { load_dataset(name, dir(), "train"); },
          {"'" + path("train-images-idx3-ubyte") + "' holds images of " + found, "expected 28x28"});
    }
  }
  write_plain(path("t10k-images-idx3-ubyte"), idx_images(2, 32, 32));
  expect_throw_with<FormatError>([&] { load_dataset("fashion-mnist", dir(), "test"); },
                                 {path("t10k-images-idx3-ubyte"), "32x32", "expected 28x28"});
  // Rows and columns are checked separately.
  write_plain(path("t10k-images-idx3-ubyte"), idx_images(2, 28, 27));
  expect_throw_with<FormatError>([&] { load_dataset("mnist", dir(), "test"); },
                                 {path("t10k-images-idx3-ubyte"), "28x27", "expected 28x28"});
  write_plain(path("t10k-images-idx3-ubyte"), idx_images(2, 28, 28));
  EXPECT_EQ(load_dataset("mnist", dir(), "test").size(), 2);
}

TEST_F(Idx, EmptySplitIsFormatError) {
  write_plain(path("train-images-idx3-ubyte"), idx_images(0, 28, 28));
  write_plain(path("train-labels-idx1-ubyte"), idx_labels({}));
  expect_throw_with<FormatError>([&] { load_dataset("fashion-mnist", dir(), "train"); },
                                 {"'" + path("train-images-idx3-ubyte") + "' holds no samples"});
  write_gz(path("t10k-images-idx3-ubyte.gz"), idx_images(0, 28, 28));
  write_gz(path("t10k-labels-idx1-ubyte.gz"), idx_labels({}));
  expect_throw_with<FormatError>([&] { load_dataset("mnist", dir(), "test"); },
                                 {path("t10k-images-idx3-ubyte.gz"), "holds no samples"});
  expect_throw_with<FormatError>(
      [&] { load_idx_pair(path("train-images-idx3-ubyte"), path("train-labels-idx1-ubyte"), 10); },
      {path("train-images-idx3-ubyte"), "holds no samples"});
}

TEST(Registry, NamesAndValidation) {
  EXPECT_EQ(dataset_names(),
            (std::vector<std::string>{"mnist", "fashion-mnist", "cifar10", "cifar100"}));
  EXPECT_THROW(load_dataset("imagenet", "/tmp", "train"), ValueError);
  EXPECT_THROW(load_dataset("mnist", "/tmp", "valid"), ValueError);
  EXPECT_THROW(standard_normalization("svhn"), ValueError);
  EXPECT_THROW(default_augmentation("svhn", true), ValueError);
  EXPECT_EQ(dataset_num_classes("cifar100"), 100);
  EXPECT_EQ(dataset_num_classes("mnist"), 10);
}

TEST(Registry, StandardNormalization) {
  Normalization f = standard_normalization("fashion-mnist");
  EXPECT_EQ(f.mean, std::vector<float>{0.2860f});
  EXPECT_EQ(f.std, std::vector<float>{0.3530f});
  Normalization m = standard_normalization("mnist");
  EXPECT_EQ(m.mean, std::vector<float>{0.1307f});
  EXPECT_EQ(m.std, std::vector<float>{0.3081f});
  Normalization c = standard_normalization("cifar10");
  EXPECT_EQ(c.mean, (std::vector<float>{0.4914f, 0.4822f, 0.4465f}));
  EXPECT_EQ(c.std, (std::vector<float>{0.2470f, 0.2435f, 0.2616f}));
  Normalization h = standard_normalization("cifar100");
  EXPECT_EQ(h.mean, (std::vector<float>{0.5071f, 0.4865f, 0.4409f}));
  EXPECT_EQ(h.std, (std::vector<float>{0.2673f, 0.2564f, 0.2762f}));
}

TEST(Registry, DefaultAugmentation) {
  auto eq = [](AugmentOptions a, int64_t pad, bool flip) {
    return a.crop_padding == pad && a.horizontal_flip == flip;
  };
  EXPECT_TRUE(eq(default_augmentation("mnist", true), 2, false));
  EXPECT_TRUE(eq(default_augmentation("fashion-mnist", true), 2, true));
  EXPECT_TRUE(eq(default_augmentation("cifar10", true), 4, true));
  EXPECT_TRUE(eq(default_augmentation("cifar100", true), 4, true));
  for (const std::string& n : dataset_names())
    EXPECT_TRUE(eq(default_augmentation(n, false), 0, false));
}

class Cifar : public TempDirTest {};

namespace {
// Record r of a file: pixels (k * 13 + r * 5 + file) mod 256, k the position in the CHW block.
Bytes cifar_file(const std::vector<std::pair<int, int>>& labels, bool c100, int file) {
  Bytes b;
  for (size_t r = 0; r < labels.size(); ++r) {
    if (c100) b.push_back(static_cast<uint8_t>(labels[r].first));  // coarse
    b.push_back(static_cast<uint8_t>(labels[r].second));
    for (int k = 0; k < 3072; ++k) b.push_back(static_cast<uint8_t>(k * 13 + r * 5 + file));
  }
  return b;
}

void check_cifar_pixels(const ImageSet& s, int64_t at, int r, int file) {
  const uint8_t* p = s.images.data<uint8_t>() + at * 3072;
  // CHW: channel 1 (green), row 2, column 5 is byte 1024 + 2*32 + 5.
  for (int k : {0, 1, 1024 + 69, 2047, 3071}) {
    ASSERT_EQ(p[k], static_cast<uint8_t>(k * 13 + r * 5 + file))
        << "sample " << at << " byte " << k;
  }
}
}  // namespace

TEST_F(Cifar, Cifar10TrainBatchesInOrderFromSubdirectory) {
  fs::create_directories(dir_ / "cifar-10-batches-bin");
  for (int f = 1; f <= 5; ++f) {
    write_plain(path("cifar-10-batches-bin/data_batch_" + std::to_string(f) + ".bin"),
                cifar_file({{0, f}, {0, 9 - f}}, false, f));
  }
  ImageSet s = load_dataset("cifar10", dir(), "train");
  EXPECT_EQ(s.images.shape(), (Shape{10, 3, 32, 32}));
  EXPECT_EQ(s.num_classes, 10);
  EXPECT_EQ(s.labels.to_vector<int32_t>(), (std::vector<int32_t>{1, 8, 2, 7, 3, 6, 4, 5, 5, 4}));
  for (int f = 1; f <= 5; ++f) {
    check_cifar_pixels(s, 2 * (f - 1), 0, f);
    check_cifar_pixels(s, 2 * (f - 1) + 1, 1, f);
  }
}

TEST_F(Cifar, Cifar10TestBatchAndErrors) {
  write_plain(path("test_batch.bin"), cifar_file({{0, 3}, {0, 0}, {0, 9}}, false, 0));
  ImageSet s = load_dataset("cifar10", dir(), "test");
  EXPECT_EQ(s.labels.to_vector<int32_t>(), (std::vector<int32_t>{3, 0, 9}));
  check_cifar_pixels(s, 2, 2, 0);
  // Train files absent -> IoError naming the first one and listing the rest.
  expect_throw_with<IoError>([&] { load_dataset("cifar10", dir(), "train"); },
                             {path("data_batch_1.bin"), "data_batch_5.bin", "test_batch.bin"});
  Bytes bad = cifar_file({{0, 1}, {0, 2}}, false, 0);
  bad.pop_back();
  write_plain(path("test_batch.bin"), bad);
  expect_throw_with<FormatError>([&] { load_dataset("cifar10", dir(), "test"); },
                                 {path("test_batch.bin"), "3073"});
  write_plain(path("test_batch.bin"), cifar_file({{0, 1}, {0, 10}}, false, 0));
  expect_throw_with<FormatError>([&] { load_dataset("cifar10", dir(), "test"); },
                                 {path("test_batch.bin"), "label 10", "record 1"});
}

TEST_F(Cifar, Cifar100UsesTheFineLabel) {
  write_plain(path("train.bin"), cifar_file({{19, 99}, {3, 42}, {0, 7}}, true, 1));
  ImageSet s = load_dataset("cifar100", dir(), "train");
  EXPECT_EQ(s.num_classes, 100);
  EXPECT_EQ(s.labels.to_vector<int32_t>(), (std::vector<int32_t>{99, 42, 7}));
  for (int r = 0; r < 3; ++r) check_cifar_pixels(s, r, r, 1);
  // A CIFAR-10 sized file is not a CIFAR-100 file.
  write_plain(path("test.bin"), cifar_file({{0, 1}, {0, 2}}, false, 0));
  expect_throw_with<FormatError>([&] { load_dataset("cifar100", dir(), "test"); },
                                 {path("test.bin"), "3074"});
  write_plain(path("test.bin"), cifar_file({{2, 100}}, true, 0));
  expect_throw_with<FormatError>([&] { load_dataset("cifar100", dir(), "test"); },
                                 {path("test.bin"), "label 100", "0..99"});
  expect_throw_with<IoError>([&] { load_dataset("cifar100", dir() + "/x", "test"); },
                             {"test.bin", "train.bin", "cifar-100-binary"});
}

TEST_F(Cifar, EmptyFileHoldsNoSamples) {
  write_plain(path("test_batch.bin"), {});
  expect_throw_with<FormatError>([&] { load_dataset("cifar10", dir(), "test"); },
                                 {"'" + path("test_batch.bin") + "' holds no samples", "3073"});
  // One empty batch among the five training files is named.
  for (int f = 1; f <= 5; ++f) {
    write_plain(path("data_batch_" + std::to_string(f) + ".bin"),
                f == 3 ? Bytes{} : cifar_file({{0, 1}}, false, f));
  }
  expect_throw_with<FormatError>([&] { load_dataset("cifar10", dir(), "train"); },
                                 {path("data_batch_3.bin"), "holds no samples"});
  write_plain(path("train.bin"), {});
  expect_throw_with<FormatError>([&] { load_dataset("cifar100", dir(), "train"); },
                                 {path("train.bin"), "holds no samples", "3074"});
}

TEST(RealData, FashionMnistIfPresent) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/train-images-idx3-ubyte.gz") &&
      !fs::exists(dir + "/train-images-idx3-ubyte")) {
    GTEST_SKIP() << "the real Fashion-MNIST is not installed at " << dir;
  }
  ImageSet train = load_dataset("fashion-mnist", dir, "train");
  ImageSet test = load_dataset("fashion-mnist", dir, "test");
  EXPECT_EQ(train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(test.images.shape(), (Shape{10000, 1, 28, 28}));
  // Balanced classes: 6000 / 1000 of each.
  std::vector<int> counts(10, 0);
  for (int32_t l : train.labels.to_vector<int32_t>()) counts[l]++;
  for (int c : counts) EXPECT_EQ(c, 6000);
  // The published training mean and std (0.2860, 0.3530) on the [0, 1] scale.
  const uint8_t* p = train.images.data<uint8_t>();
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < train.images.numel(); ++i) {
    sum += p[i] / 255.0;
    sq += (p[i] / 255.0) * (p[i] / 255.0);
  }
  const double mean = sum / train.images.numel();
  EXPECT_NEAR(mean, 0.2860, 5e-4);
  EXPECT_NEAR(std::sqrt(sq / train.images.numel() - mean * mean), 0.3530, 5e-4);
}
