#include "datasets/loader.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace tranq::data {
namespace {

const ImageSet& checked(const ImageSet& set) {
  TRANQ_CHECK(set.images.defined() && set.labels.defined(),
              "Loader: the image set has no images or labels (was it loaded?)");
  check_dtype(set.images, DType::u8, "Loader", "set.images");
  check_dtype(set.labels, DType::i32, "Loader", "set.labels");
  TRANQ_CHECK(set.images.dim() == 4 && set.images.is_contiguous(),
              "Loader: expected contiguous u8 [N, C, H, W] images, got {}", tensor_str(set.images));
  TRANQ_CHECK(set.labels.dim() == 1 && set.labels.size(0) == set.images.size(0) &&
                  set.labels.is_contiguous(),
              "Loader: expected contiguous i32 labels [{}], got {}", set.images.size(0),
              tensor_str(set.labels));
  TRANQ_CHECK(set.images.size(1) > 0, "Loader: images have no channels: {}",
              tensor_str(set.images));
  return set;
}

}  // namespace

Loader::Loader(const ImageSet& set, LoaderOptions opt)
    : Loader(std::make_shared<ImageSetSource>(checked(set), opt.augment, opt.norm), opt) {}

Loader::Loader(std::shared_ptr<const SampleSource> source, LoaderOptions opt)
    : source_(std::move(source)), opt_(std::move(opt)) {
  TRANQ_CHECK(source_ != nullptr, "Loader: no sample source");
  TRANQ_CHECK(opt_.batch_size > 0, "Loader: batch_size must be positive, got {}", opt_.batch_size);
  TRANQ_CHECK(opt_.workers >= 0, "Loader: workers must be >= 0, got {}", opt_.workers);
  TRANQ_CHECK(opt_.prefetch >= 0, "Loader: prefetch must be >= 1 (0: the default), got {}",
              opt_.prefetch);
  TRANQ_CHECK(opt_.augment.crop_padding >= 0, "Loader: crop padding must be >= 0, got {}",
              opt_.augment.crop_padding);
}

Loader::~Loader() {
  stop_workers();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = source_->size(), b = opt_.batch_size;
  // n + b - 1 would overflow for a batch size near INT64_MAX.
  return opt_.drop_last ? n / b : n / b + (n % b != 0);
}

int64_t Loader::prefetch_depth() const {
  if (opt_.prefetch > 0) return opt_.prefetch;
  return std::max<int64_t>(kMinDefaultPrefetch,
                           static_cast<int64_t>(kDefaultPrefetchPerWorker) * opt_.workers);
}

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(source_->size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (opt_.shuffle) {
    Rng rng(opt_.seed, static_cast<uint64_t>(epoch));
    for (size_t i = order.size(); i > 1; --i) {
      std::swap(order[i - 1], order[rng.below(i)]);
    }
  }
  return order;
}

Batch Loader::make_batch(int64_t epoch, const std::vector<int64_t>& order, int64_t b) const {
  const int64_t n = static_cast<int64_t>(order.size()), bs = opt_.batch_size;
  // Checked before b * bs, which a batch past the end could overflow.
  TRANQ_CHECK(b >= 0 && b < n / bs + (n % bs != 0),
              "Loader: batch {} is outside the epoch of {} samples", b, n);
  const int64_t begin = b * bs;  // < n
  const int64_t count = std::min(bs, n - begin);
  const Shape shape = source_->sample_shape();
  const int64_t sample = shape_numel(shape);
  Batch out;
  out.index = b;
  Shape batch_shape = {count};
  batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
  out.images = opt_.pinned ? Tensor::empty_pinned(batch_shape, DType::f32)
                           : Tensor::empty(batch_shape, DType::f32);
  out.labels = opt_.pinned ? Tensor::empty_pinned({count}, DType::i32)
                           : Tensor::empty({count}, DType::i32);
  float* img = out.images.data<float>();
  int32_t* lab = out.labels.data<int32_t>();
  int64_t kept = 0;
  std::string error;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t idx = order[begin + i];
    Rng rng = sample_rng(opt_.seed, epoch, idx);
    if (!source_->load(idx, rng, img + kept * sample, &error)) {
      out.skipped.push_back(error);
      continue;
    }
    lab[kept++] = source_->label(idx);
  }
  if (kept < count) {
    out.images = out.images.narrow(0, 0, kept);
    out.labels = out.labels.narrow(0, 0, kept);
  }
  return out;
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  TRANQ_CHECK(epoch >= 0, "Loader::start_epoch: epoch must be >= 0, got {}", epoch);
  const int64_t batches = batches_per_epoch();
  TRANQ_CHECK(first_batch >= 0 && first_batch <= batches,
              "Loader::start_epoch: first batch {} is outside [0, {}] for this epoch", first_batch,
              batches);
  stop_workers();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  end_batch_ = batches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    next_claim_ = first_batch;
    next_deliver_ = first_batch;
    stop_ = false;
    error_ = nullptr;
    error_batch_ = 0;
    ready_.clear();
  }
  const int workers = static_cast<int>(std::min<int64_t>(opt_.workers, batches - first_batch));
  for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { worker_loop(); });
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  space_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  ready_.clear();
}

void Loader::worker_loop() {
  const int64_t depth = prefetch_depth();
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_ || error_ || next_claim_ >= end_batch_) return;
      b = next_claim_++;
      // Bounded look-ahead. The batch the consumer waits for always passes this test, so the
      // wait cannot deadlock.
      space_cv_.wait(lock, [&] { return stop_ || b - next_deliver_ < depth; });
      if (stop_) return;
    }
    try {
      Batch batch = make_batch(epoch_, order_, b);
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(b, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_ || b < error_batch_) {
        error_ = std::current_exception();
        error_batch_ = b;
      }
    }
    ready_cv_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  TRANQ_CHECK(epoch_ >= 0, "Loader::next: call start_epoch(epoch) before asking for batches");
  std::unique_lock<std::mutex> lock(mu_);
  if (next_deliver_ >= end_batch_) return false;
  const int64_t b = next_deliver_;
  if (opt_.workers == 0) {
    // Synchronous mode (workers = 0).
    lock.unlock();
    out = make_batch(epoch_, order_, b);
    lock.lock();
    ++next_deliver_;
    return true;
  }
  // Batches before the failed one were claimed before it and still arrive, so an error surfaces
  // at the batch that raised it, as it would in synchronous mode.
  ready_cv_.wait(lock, [&] { return ready_.count(b) > 0 || (error_ && b >= error_batch_); });
  auto it = ready_.find(b);
  if (it == ready_.end()) std::rethrow_exception(error_);
  out = std::move(it->second);
  ready_.erase(it);
  ++next_deliver_;
  lock.unlock();
  space_cv_.notify_all();
  return true;
}

}  // namespace tranq::data
