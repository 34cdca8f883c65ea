// The prefetching loader: coverage of every sample, determinism across worker counts and
// resumption points, and clean shutdown mid-epoch.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>
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

// Sample i is the constant i. Counts the loads started and running at once; a load waits until
// `gate` loads have run together (then the gate stays open) or release() is called, so a test
// can see how many batches the loader assembles at once without relying on timing.
class GateSource final : public SampleSource {
 public:
  GateSource(int64_t n, int gate) : n_(n), gate_(gate) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return n_; }
  Shape sample_shape() const override { return {1, 1, 1}; }
  int32_t label(int64_t i) const override { return static_cast<int32_t>(i); }
  bool load(int64_t i, Rng&, float* dst, std::string*) const override {
    std::unique_lock<std::mutex> lock(mu_);
    ++started_;
    max_active_ = std::max(max_active_, ++active_);
    if (active_ >= gate_) open_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    --active_;
    dst[0] = static_cast<float>(i);
    return true;
  }
  // Waits until pred() holds (checked under the lock at every load), for at most 30 s
  // (a hang would mean the test failed); returns pred().
  bool wait_until(const std::function<bool(int started, int max_active)>& pred) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30),
                        [&] { return pred(started_, max_active_); });
  }
  void release() const {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int started() const {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }
  int max_active() const {
    std::lock_guard<std::mutex> lock(mu_);
    return max_active_;
  }

 private:
  int64_t n_;
  int gate_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int started_ = 0, active_ = 0, max_active_ = 0;
  mutable bool open_ = false;
};

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
  for (int workers : {1, 3, 8}) {
    for (int prefetch : {0, 1, 4}) {
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
  o.prefetch = -1;  // 0 is the default depth
  EXPECT_THROW(Loader(set, o), ValueError);
  o = opts(4, 1);
  o.norm = {{0.5f, 0.5f, 0.5f}, {1, 1, 1}};  // three channels' statistics for two channels
  EXPECT_THROW(Loader(set, o), ValueError);
  EXPECT_THROW(Loader(ImageSet{}, opts(4, 1)), ValueError);
}

// The default look-ahead grows with the worker count: 8 workers assemble 8 batches at once (a
// fixed bound of 4 batches left half of them idle), and no more than 2 per worker are made
// ahead of a consumer that takes none.
TEST(Loader, DefaultLookAheadKeepsEveryWorkerBusyAndStaysBounded) {
  LoaderOptions o;
  o.batch_size = 1;
  o.shuffle = false;
  o.workers = 8;
  {
    Loader l(std::make_shared<GateSource>(40, 1), o);
    EXPECT_EQ(l.prefetch_depth(), 16);
  }
  // Every load waits until 8 run at once: only a loader that lets all 8 workers build a
  // batch gets past the gate.
  auto gated = std::make_shared<GateSource>(40, 8);
  {
    Loader l(gated, o);
    l.start_epoch(0);
    const bool all_busy = gated->wait_until([](int, int max_active) { return max_active >= 8; });
    EXPECT_TRUE(all_busy) << "at most " << gated->max_active()
                          << " of 8 workers assembled a batch at once";
    gated->release();
    Batch b;
    for (int64_t i = 0; i < 40; ++i) {
      ASSERT_TRUE(l.next(b));
      EXPECT_EQ(b.index, i);
      EXPECT_EQ(b.labels.to_vector<int32_t>(), std::vector<int32_t>{static_cast<int32_t>(i)});
      EXPECT_EQ(b.images.to_vector<float>(), std::vector<float>{static_cast<float>(i)});
    }
    EXPECT_FALSE(l.next(b));
  }
  // Bounded: with no batch taken, the workers stop after 2 x 8 batches.
  auto free_running = std::make_shared<GateSource>(40, 1);
  Loader l(free_running, o);
  l.start_epoch(0);
  EXPECT_TRUE(free_running->wait_until([](int started, int) { return started >= 16; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // give a 17th load a chance
  EXPECT_EQ(free_running->started(), 16);
  Batch b;
  ASSERT_TRUE(l.next(b));  // one taken: room for one more
  EXPECT_TRUE(free_running->wait_until([](int started, int) { return started >= 17; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(free_running->started(), 17);
  // An explicit depth is kept, and few workers keep a depth of 4.
  o.prefetch = 3;
  EXPECT_EQ(Loader(free_running, o).prefetch_depth(), 3);
  o.prefetch = 0;
  for (int w : {0, 1, 2}) {
    o.workers = w;
    EXPECT_EQ(Loader(free_running, o).prefetch_depth(), 4) << w << " workers";
  }
  o.workers = 3;
  EXPECT_EQ(Loader(free_running, o).prefetch_depth(), 6);
}

// batches_per_epoch must not compute n + batch_size - 1, which overflows near INT64_MAX.
TEST(Loader, HugeBatchSizeGivesOneBatch) {
  ImageSet set = make_set(10);
  for (int64_t bs : {int64_t{1} << 62, INT64_MAX - 1, INT64_MAX}) {
    SCOPED_TRACE(bs);
    LoaderOptions o = opts(bs, 1);
    Loader l(set, o);
    EXPECT_EQ(l.batches_per_epoch(), 1);
    const std::vector<Batch> batches = epoch_batches(l, 0);
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(batches[0].labels.numel(), 10);
    EXPECT_THROW(l.make_batch(0, l.epoch_order(0), 2), ValueError);  // b * bs would overflow
    o.drop_last = true;
    EXPECT_EQ(Loader(set, o).batches_per_epoch(), 0);
  }
  EXPECT_EQ(Loader(set, opts(3, 1)).batches_per_epoch(), 4);
  EXPECT_EQ(Loader(set, opts(5, 1)).batches_per_epoch(), 2);
}
