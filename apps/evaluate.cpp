#include "apps/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "apps/device.h"
#include "core/autograd.h"
#include "datasets/device_prefetcher.h"
#include "datasets/loader.h"
#include "kernels/accuracy.h"

namespace tranq::app {

EvalResult evaluate(Module& model, std::shared_ptr<const data::SampleSource> source,
                    int64_t batch_size, int workers) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  data::LoaderOptions opt;
  opt.batch_size = batch_size;
  opt.shuffle = false;
  opt.workers = workers;
  const Device device = module_device(model);
  opt.pinned = device.is_cuda();  // uploads that need not wait
  data::Loader loader(std::move(source), opt);
  loader.start_epoch(0);
  data::Batch batch;
  EvalResult r;
  // One count per batch, kept on the device and read once at the end: no batch waits for the
  // previous one's result.
  const Tensor counts =
      Tensor::zeros({std::max<int64_t>(1, loader.batches_per_epoch())}, DType::i64, device);
  int64_t slot = 0;
  data::DevicePrefetcher prefetcher(device);  // uploads overlap the previous batch's forward
  while (loader.next(batch)) {
    r.skipped.insert(r.skipped.end(), batch.skipped.begin(), batch.skipped.end());
    if (batch.labels.numel() == 0) continue;
    const data::DevicePrefetcher::DeviceBatch on_device = prefetcher.upload(batch);
    const Tensor logits = model.forward(on_device.images);
    kernels::count_correct_into(logits.contiguous(), on_device.labels, counts, slot++);
    r.seen += batch.labels.numel();
  }
  model.train(was_training);
  int64_t correct = 0;
  for (int64_t c : counts.to_vector<int64_t>()) correct += c;  // the one device read
  r.accuracy = r.seen ? static_cast<double>(correct) / static_cast<double>(r.seen) : 0.0;
  return r;
}

void note_ignored_files(const data::SampleSource& source) {
  const auto* folder = dynamic_cast<const data::FolderSource*>(&source);
  if (!folder) return;
  const std::string note = data::ignored_files_note(folder->folder());
  if (!note.empty())
    fmt::print(stderr, "tranq: note: {}: {} (only .jpg/.jpeg files are read)\n",
               folder->folder().root, note);
}

}  // namespace tranq::app
