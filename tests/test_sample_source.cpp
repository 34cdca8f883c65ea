// Sample sources behind the loader: a source whose samples can fail is skipped per sample,
// named and counted, with batches still a pure function of (epoch, batch index); the folder
// source through the loader is deterministic across worker counts; pinned batches hold the
// same values; open_dataset's errors name what is expected.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "datasets/jpeg.h"
#include "datasets/loader.h"
#include "datasets/sources.h"

using namespace tranq;
using namespace tranq::data;
namespace fs = std::filesystem;

namespace {

// Sample i is the constant image i; samples whose index is a multiple of `bad_every` fail.
class FlakySource final : public SampleSource {
 public:
  FlakySource(int64_t n, int64_t bad_every) : n_(n), bad_every_(bad_every) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return n_; }
  Shape sample_shape() const override { return {1, 2, 3}; }
  int32_t label(int64_t i) const override { return static_cast<int32_t>(i); }
  bool load(int64_t i, Rng& rng, float* dst, std::string* error) const override {
    if (i % bad_every_ == 0) {
      *error = "sample" + std::to_string(i) + ": broken";
      return false;
    }
    for (int k = 0; k < 6; ++k)
      dst[k] = static_cast<float>(i) + static_cast<float>(rng.uniform(0, 0.5));
    return true;
  }

 private:
  int64_t n_, bad_every_;
};

std::vector<Batch> all_batches(Loader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

bool same(const Batch& a, const Batch& b) {
  return a.index == b.index && a.images.shape() == b.images.shape() &&
         a.labels.to_vector<int32_t>() == b.labels.to_vector<int32_t>() && a.skipped == b.skipped &&
         std::memcmp(a.images.raw_data(), b.images.raw_data(), a.images.nbytes()) == 0;
}

}  // namespace

TEST(SampleSource, UnreadableSamplesAreLeftOutNamedAndCounted) {
  auto src = std::make_shared<FlakySource>(20, 5);  // 0, 5, 10, 15 fail
  LoaderOptions o;
  o.batch_size = 6;
  o.workers = 2;
  o.seed = 3;
  Loader loader(src, o);
  const std::vector<Batch> batches = all_batches(loader, 0);
  ASSERT_EQ(batches.size(), 4u);
  int64_t kept = 0, skipped = 0;
  for (const Batch& b : batches) {
    EXPECT_EQ(b.images.size(0) + static_cast<int64_t>(b.skipped.size()), b.index < 3 ? 6 : 2);
    EXPECT_EQ(b.images.size(0), b.labels.numel());
    for (int32_t l : b.labels.to_vector<int32_t>()) {
      EXPECT_NE(l % 5, 0);
      ++kept;
    }
    for (const std::string& s : b.skipped) {
      EXPECT_NE(s.find(": broken"), std::string::npos);
      ++skipped;
    }
    // Each kept row holds its own sample (pixels >= label, < label + 0.5).
    const std::vector<float> px = b.images.contiguous().to_vector<float>();
    const std::vector<int32_t> lab = b.labels.to_vector<int32_t>();
    for (size_t r = 0; r < lab.size(); ++r)
      for (int k = 0; k < 6; ++k) {
        EXPECT_GE(px[r * 6 + k], static_cast<float>(lab[r]));
        EXPECT_LT(px[r * 6 + k], static_cast<float>(lab[r]) + 0.5f);
      }
  }
  EXPECT_EQ(kept, 16);
  EXPECT_EQ(skipped, 4);
  // Same batches synchronously and in page-locked memory (here: host memory without a GPU).
  o.workers = 0;
  o.pinned = true;
  Loader sync(src, o);
  const std::vector<Batch> again = all_batches(sync, 0);
  ASSERT_EQ(again.size(), batches.size());
  for (size_t i = 0; i < again.size(); ++i) EXPECT_TRUE(same(batches[i], again[i])) << i;
}

TEST(SampleSource, FolderThroughLoaderIsDeterministicAcrossWorkers) {
  const fs::path root = fs::path(::testing::TempDir()) / "tranq_src_folder";
  fs::remove_all(root);
  for (int k = 0; k < 2; ++k) {
    fs::create_directories(root / "train" / ("c" + std::to_string(k)));
    fs::create_directories(root / "val" / ("c" + std::to_string(k)));
    for (int i = 0; i < 4; ++i) {
      const int64_t w = 30 + 7 * i, h = 41 - 3 * i;
      std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
      for (size_t j = 0; j < px.size(); ++j) px[j] = static_cast<uint8_t>((j * (k + 3) + i) % 251);
      const auto bytes = encode_jpeg(px.data(), w, h, 3, 85);
      for (const char* split : {"train", "val"}) {
        std::ofstream f(
            root / split / ("c" + std::to_string(k)) / ("i" + std::to_string(i) + ".jpg"),
            std::ios::binary);
        f.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
      }
    }
  }
  SourceOptions so;
  so.image_size = 24;
  auto train = open_dataset("folder", root.string(), "train", so);
  EXPECT_EQ(train->size(), 8);
  EXPECT_EQ(train->num_classes(), 2);
  EXPECT_EQ(train->sample_shape(), (Shape{3, 24, 24}));
  const DatasetShape ds = dataset_shape("folder", root.string());
  EXPECT_EQ(ds.classes, 2);
  EXPECT_EQ(ds.channels, 3);
  LoaderOptions o;
  o.batch_size = 3;
  o.seed = 11;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    o.workers = workers;
    Loader loader(train, o);
    runs.push_back(all_batches(loader, 2));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t i = 0; i < runs[0].size(); ++i) EXPECT_TRUE(same(runs[0][i], runs[r][i]));
  }
  // Another epoch draws other crops.
  Loader loader(train, o);
  const std::vector<Batch> other = all_batches(loader, 3);
  bool differs = false;
  for (size_t i = 0; i < other.size(); ++i) differs |= !same(other[i], runs[0][i]);
  EXPECT_TRUE(differs);
  fs::remove_all(root);
}

TEST(SampleSource, OpenDatasetErrorsSayWhatIsExpected) {
  try {
    open_dataset("folder", "/nonexistent/tranq", "train", {});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("DIR/train/<class>/*.jpg"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_dataset("svhn", "/tmp", "train", {}), ValueError);
  SourceOptions so;
  so.image_size = 64;
  EXPECT_THROW(open_dataset("mnist", "/tmp", "train", so), ValueError);  // fixed-size images
  EXPECT_THROW(dataset_shape("folder", ""), ValueError);
  EXPECT_EQ(dataset_shape("imagenet", "").classes, 1000);
  EXPECT_EQ(dataset_shape("cifar100", "").classes, 100);
}
