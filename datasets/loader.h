#pragma once
// The prefetching batch loader: shuffles a SampleSource (an in-memory ImageSet, or JPEG folders
// decoded on the fly) into f32 batches assembled on background threads, delivered in a fixed
// order.
//
// Determinism: the sample order of epoch e is a Fisher-Yates shuffle drawn from
// Rng(seed, e); a sample's augmentation is drawn from sample_rng(seed, e, dataset index). So a
// batch is a pure function of (set, options, epoch, batch index): the same whatever the worker
// count, the prefetch depth or the batch an epoch was (re)started at.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "datasets/dataset.h"
#include "datasets/registry.h"
#include "datasets/sample_source.h"
#include "datasets/transforms.h"

namespace tranq::data {

struct Batch {
  Tensor images;      // f32 [B, C, H, W], augmented and normalised
  Tensor labels;      // i32 [B]
  int64_t index = 0;  // batch index within the epoch
  // Samples of this batch that could not be read ("PATH: reason"), left out of images/labels:
  // B is the batch size minus their number (possibly 0).
  std::vector<std::string> skipped;
};

constexpr int kDefaultPrefetchPerWorker = 2;
constexpr int kMinDefaultPrefetch = 4;

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // when false the last, smaller batch is kept
  uint64_t seed = 0;
  int workers = 2;  // background threads; 0 assembles each batch inside next()
  // At most this many batches are being assembled or wait for the consumer (>= 1), which
  // bounds the memory held; 0: kDefaultPrefetchPerWorker per worker, at least
  // kMinDefaultPrefetch (PyTorch's prefetch_factor 2 x num_workers), so that every worker has
  // a batch to assemble while the consumer is busy.
  int prefetch = 0;
  AugmentOptions augment;  // ImageSet constructor only
  Normalization norm;      // ImageSet constructor only; empty means pixel / 255
  // Allocate batch images and labels in page-locked host memory (fast copies to a GPU that need
  // not wait: Tensor::to(device, true)) when the CUDA backend is initialised; plain host memory
  // otherwise.
  bool pinned = false;
};

// One consumer thread calls start_epoch/next; the loader itself is not meant to be shared.
class Loader {
 public:
  // Keeps a copy of `set`: its tensors are shared handles, so this aliases the caller's pixels
  // (no copy) and keeps them alive. Do not write to the set's tensors while the loader is in use.
  // Throws ValueError for an inconsistent set or options.
  Loader(const ImageSet& set, LoaderOptions opt);
  // Any source; opt.augment and opt.norm are not used (the source applies its own transform).
  Loader(std::shared_ptr<const SampleSource> source, LoaderOptions opt);
  ~Loader();  // stops and joins the workers, also mid-epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const;
  // The look-ahead bound in batches: opt.prefetch, or its default when 0 (see LoaderOptions).
  int64_t prefetch_depth() const;
  const LoaderOptions& options() const { return opt_; }
  const SampleSource& source() const { return *source_; }

  // Starts epoch `epoch` (0-based) at batch `first_batch` in [0, batches_per_epoch()], for exact
  // resumption. Abandons whatever remains of the previous epoch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch, in order; false once the epoch is exhausted. Rethrows an error
  // raised while assembling a batch. Throws ValueError if no epoch was started.
  bool next(Batch& out);

  // The sample order of an epoch (dataset indices), as the loader uses it.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Assembles batch `b` of `epoch` directly (what the workers do); thread-safe.
  Batch make_batch(int64_t epoch, const std::vector<int64_t>& order, int64_t b) const;

 private:
  void stop_workers();
  void worker_loop();

  std::shared_ptr<const SampleSource> source_;
  LoaderOptions opt_;

  // The current epoch; written only while no worker runs.
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
  int64_t end_batch_ = 0;

  std::mutex mu_;
  std::condition_variable ready_cv_;  // a batch arrived or a worker failed
  std::condition_variable space_cv_;  // the consumer took a batch, or stop was requested
  int64_t next_claim_ = 0;            // next batch index a worker will assemble
  int64_t next_deliver_ = 0;          // next batch index next() returns
  bool stop_ = false;
  std::exception_ptr error_;  // the first failure, raised while assembling batch error_batch_
  int64_t error_batch_ = 0;
  std::map<int64_t, Batch> ready_;
  std::vector<std::thread> threads_;
};

}  // namespace tranq::data
