#include "apps/evaluate.h"

#include "apps/device.h"
#include "core/autograd.h"
#include "datasets/loader.h"

namespace tranq::app {

int64_t count_correct(const Tensor& logits_in, const Tensor& labels_in) {
  Tensor logits = logits_in.to(Device::cpu()).contiguous().to(DType::f32);
  Tensor labels = labels_in.to(Device::cpu()).contiguous();
  const int64_t n = logits.size(0), c = logits.size(1);
  const float* pl = logits.data<float>();
  const int32_t* py = labels.data<int32_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < c; ++k)
      if (pl[i * c + k] > pl[i * c + best]) best = k;
    correct += best == py[i];
  }
  return correct;
}

EvalResult evaluate(Module& model, std::shared_ptr<const data::SampleSource> source,
                    int64_t batch_size, int workers) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  data::LoaderOptions opt;
  opt.batch_size = batch_size;
  opt.shuffle = false;
  opt.workers = workers;
  data::Loader loader(std::move(source), opt);
  loader.start_epoch(0);
  data::Batch batch;
  EvalResult r;
  const Device device = module_device(model);
  int64_t correct = 0;
  while (loader.next(batch)) {
    r.skipped.insert(r.skipped.end(), batch.skipped.begin(), batch.skipped.end());
    if (batch.labels.numel() == 0) continue;
    correct += count_correct(model.forward(batch.images.to(device)), batch.labels);
    r.seen += batch.labels.numel();
  }
  model.train(was_training);
  r.accuracy = r.seen ? static_cast<double>(correct) / static_cast<double>(r.seen) : 0.0;
  return r;
}

}  // namespace tranq::app
