// The prefetching loader: coverage of every sample, determinism across worker counts and
// resumption points, and clean shutdown mid-epoch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/rng.h"
#include "datasets/loader.h"
#include "datasets/transforms.h"

using namespace tranq;
using namespace tranq::data;

namespace {

// N samples of C x H x W with pseudo-random pixels; label i = sample index, so a batch tells
// which samples it holds.
ImageSet make_set(int64_t n, int64_t c = 2, int64_t h = 5, int64_t w = 6) {
  ImageSet s;
  s.images = Tensor::empty({n, c, h, w}, DType::u8);
  s.labels = Tensor::empty({n}, DType::i32);
  s.num_classes = n;
  Rng rng(99);
  uint8_t* p = s.images.data<uint8_t>();
  for (int64_t i = 0; i < s.images.numel(); ++i) p[i] = static_cast<uint8_t>(rng.below(256));
  int32_t* l = s.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) l[i] = static_cast<int32_t>(i);
  return s;
}

LoaderOptions opts(int64_t batch, int workers, uint64_t seed = 7) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.seed = seed;
  o.augment = {2, true};
  o.norm = {{0.3f, 0.6f}, {0.2f, 0.4f}};
  return o;
}

std::vector<Batch> epoch_batches(Loader& loader, int64_t epoch, int64_t first = 0) {
  loader.start_epoch(epoch, first);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

std::vector<int32_t> labels_of(const std::vector<Batch>& batches) {
  std::vector<int32_t> out;
  for (const Batch& b : batches) {
    std::vector<int32_t> l = b.labels.to_vector<int32_t>();
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, b[i].index);
    ASSERT_EQ(a[i].images.shape(), b[i].images.shape());
    EXPECT_EQ(a[i].labels.to_vector<int32_t>(), b[i].labels.to_vector<int32_t>()) << "batch " << i;
    EXPECT_EQ(std::memcmp(a[i].images.raw_data(), b[i].images.raw_data(), a[i].images.nbytes()), 0)
        << "batch " << i << " pixels differ";
  }
}

}  // namespace

TEST(Loader, EverySampleOnceAndPartialLastBatch) {
  ImageSet set = make_set(37);
  Loader loader(set, opts(8, 2));
  EXPECT_EQ(loader.batches_per_epoch(), 5);
  for (int64_t epoch : {0, 1, 2}) {
    std::vector<Batch> batches = epoch_batches(loader, epoch);
    ASSERT_EQ(batches.size(), 5u);
    for (size_t i = 0; i < batches.size(); ++i) {
      EXPECT_EQ(batches[i].index, static_cast<int64_t>(i));
      const int64_t n = i < 4 ? 8 : 5;
      EXPECT_EQ(batches[i].images.shape(), (Shape{n, 2, 5, 6}));
      EXPECT_EQ(batches[i].images.dtype(), DType::f32);
      EXPECT_EQ(batches[i].labels.shape(), (Shape{n}));
    }
    std::vector<int32_t> seen = labels_of(batches);
    std::sort(seen.begin(), seen.end());
    std::vector<int32_t> all(37);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(seen, all) << "epoch " << epoch;
    Batch extra;
    EXPECT_FALSE(loader.next(extra)) << "the epoch stays finished";
  }
}

TEST(Loader, DropLast) {
  ImageSet set = make_set(37);
  LoaderOptions o = opts(8, 1);
  o.drop_last = true;
  Loader loader(set, o);
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  std::vector<Batch> batches = epoch_batches(loader, 0);
  ASSERT_EQ(batches.size(), 4u);
  for (const Batch& b : batches) EXPECT_EQ(b.labels.numel(), 8);
  std::vector<int32_t> seen = labels_of(batches);
  std::sort(seen.begin(), seen.end());
  EXPECT_TRUE(std::adjacent_find(seen.begin(), seen.end()) == seen.end()) << "no repeats";
}

TEST(Loader, OrderIsAFunctionOfSeedAndEpoch) {
  ImageSet set = make_set(50);
  Loader a(set, opts(16, 2, 5)), b(set, opts(16, 0, 5)), c(set, opts(16, 2, 6));
  const std::vector<int32_t> a0 = labels_of(epoch_batches(a, 0));
  const std::vector<int32_t> a1 = labels_of(epoch_batches(a, 1));
  EXPECT_NE(a0, a1) << "each epoch is reshuffled";
  EXPECT_EQ(a0, labels_of(epoch_batches(b, 0)));
  EXPECT_EQ(a1, labels_of(epoch_batches(b, 1)));
  EXPECT_NE(a0, labels_of(epoch_batches(c, 0))) << "a different seed gives another order";
  std::vector<int32_t> identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(a0, identity);
  EXPECT_EQ(a.epoch_order(1), std::vector<int64_t>(a1.begin(), a1.end()));
  LoaderOptions o = opts(16, 2);
  o.shuffle = false;
  Loader plain(set, o);
  EXPECT_EQ(labels_of(epoch_batches(plain, 3)), identity);
}

TEST(Loader, BatchesEqualTheReferenceTransform) {
  ImageSet set = make_set(20, 3, 6, 4);
  LoaderOptions o = opts(6, 3, 11);
  o.norm = {{0.1f, 0.2f, 0.3f}, {0.5f, 0.6f, 0.7f}};
  Loader loader(set, o);
  PixelNormalizer lut(o.norm, 3);
  std::vector<Batch> batches = epoch_batches(loader, 4);
  int augmented = 0;
  for (const Batch& b : batches) {
    std::vector<float> got = b.images.to_vector<float>();
    std::vector<int32_t> idx = b.labels.to_vector<int32_t>();
    for (size_t i = 0; i < idx.size(); ++i) {
      Rng rng = sample_rng(11, 4, idx[i]);
      CropFlip c = draw_augmentation({2, true}, rng);
      augmented += c.flip || c.offset_x != 2 || c.offset_y != 2;
      std::vector<float> want(72);
      augment_normalize(set.images.data<uint8_t>() + idx[i] * 72, 3, 6, 4, c, lut, want.data());
      ASSERT_TRUE(std::equal(want.begin(), want.end(), got.begin() + i * 72))
          << "sample " << idx[i];
    }
  }
  EXPECT_GT(augmented, 10) << "augmentation is actually applied";
  // Without augmentation a batch is the plain normalised image.
  o.augment = {};
  Loader eval(set, o);
  eval.start_epoch(0);
  Batch b;
  ASSERT_TRUE(eval.next(b));
  const int32_t first = b.labels.to_vector<int32_t>()[0];
  const uint8_t px = set.images.data<uint8_t>()[first * 72 + 24 + 5];  // channel 1, pixel 5
  EXPECT_FLOAT_EQ(b.images.to_vector<float>()[24 + 5], (px / 255.0f - 0.2f) / 0.6f);
}

TEST(Loader, IdenticalForAnyWorkerCountAndPrefetch) {
  ImageSet set = make_set(45);
  Loader ref(set, opts(4, 0));
  const std::vector<Batch> r0 = epoch_batches(ref, 0), r1 = epoch_batches(ref, 1);
  for (int workers : {1, 3}) {
    for (int prefetch : {1, 4}) {
      LoaderOptions o = opts(4, workers);
      o.prefetch = prefetch;
      Loader l(set, o);
      SCOPED_TRACE(testing::Message() << "workers " << workers << " prefetch " << prefetch);
      expect_same_batches(epoch_batches(l, 0), r0);
      expect_same_batches(epoch_batches(l, 1), r1);
    }
  }
}

TEST(Loader, ResumeMidEpochGivesTheRemainingBatches) {
  ImageSet set = make_set(45);
  for (int workers : {0, 2}) {
    Loader l(set, opts(4, workers));
    const std::vector<Batch> full = epoch_batches(l, 2);
    ASSERT_EQ(full.size(), 12u);
    for (int64_t k : {1, 5, 11, 12}) {
      Loader fresh(set, opts(4, workers));
      std::vector<Batch> tail = epoch_batches(fresh, 2, k);
      expect_same_batches(tail, std::vector<Batch>(full.begin() + k, full.end()));
    }
    // Restarting the same loader mid-epoch, also after consuming a few batches.
    l.start_epoch(2);
    Batch b;
    ASSERT_TRUE(l.next(b));
    ASSERT_TRUE(l.next(b));
    expect_same_batches(epoch_batches(l, 2, 7), std::vector<Batch>(full.begin() + 7, full.end()));
  }
}

TEST(Loader, StopsCleanlyMidEpoch) {
  ImageSet set = make_set(200, 1, 8, 8);
  for (int workers : {1, 4}) {
    LoaderOptions o = opts(3, workers);
    o.prefetch = 2;
    o.norm = {};
    {
      Loader l(set, o);  // destroyed without ever starting
    }
    {
      Loader l(set, o);
      l.start_epoch(0);  // destroyed with workers blocked on a full queue
    }
    {
      Loader l(set, o);
      l.start_epoch(0);
      Batch b;
      for (int i = 0; i < 5; ++i) ASSERT_TRUE(l.next(b));
      EXPECT_EQ(b.index, 4);
      // Abandon the epoch for the next one, repeatedly and at once.
      for (int e = 1; e < 20; ++e) l.start_epoch(e, e % 3);
      ASSERT_TRUE(l.next(b));
      EXPECT_EQ(b.index, 19 % 3);
    }
    {
      Loader l(set, o);
      l.start_epoch(3);
      Batch b;
      ASSERT_TRUE(l.next(b));
    }  // destroyed mid-epoch
  }
  // The set's pixels stay alive as long as the loader, even if the caller drops its copy.
  auto owned = std::make_unique<ImageSet>(make_set(10));
  Loader l(*owned, opts(4, 2));
  owned.reset();
  EXPECT_EQ(labels_of(epoch_batches(l, 0)).size(), 10u);
}

TEST(Loader, RejectsBadUse) {
  ImageSet set = make_set(10);
  Loader l(set, opts(4, 1));
  Batch b;
  EXPECT_THROW(l.next(b), ValueError) << "next() before start_epoch()";
  EXPECT_THROW(l.start_epoch(0, 4), ValueError);
  EXPECT_THROW(l.start_epoch(-1), ValueError);
  l.start_epoch(0, 2);  // the last batch only
  ASSERT_TRUE(l.next(b));
  EXPECT_EQ(b.labels.numel(), 2);
  EXPECT_FALSE(l.next(b));
  EXPECT_THROW(Loader(set, opts(0, 1)), ValueError);
  LoaderOptions o = opts(4, 1);
  o.prefetch = 0;
  EXPECT_THROW(Loader(set, o), ValueError);
  o = opts(4, 1);
  o.norm = {{0.5f, 0.5f, 0.5f}, {1, 1, 1}};  // three channels' statistics for two channels
  EXPECT_THROW(Loader(set, o), ValueError);
  EXPECT_THROW(Loader(ImageSet{}, opts(4, 1)), ValueError);
}
