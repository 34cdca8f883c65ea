#include "apps/trainer.h"

#include <fmt/ranges.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/device.h"
#include "apps/evaluate.h"
#include "apps/metrics.h"
#include "apps/progress.h"
#include "apps/run_files.h"
#include "apps/run_setup.h"
#include "apps/step_stats.h"
#include "core/atomic_file.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "datasets/device_prefetcher.h"
#include "datasets/loader.h"
#include "datasets/sources.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "layers/dropout.h"
#include "layers/functional.h"
#include "optim/clip_grad.h"
#include "optim/lr_schedule.h"
#include "quant/transform.h"

namespace tranq::app {

namespace fs = std::filesystem;

namespace {

// The Dropout modules' RNG states: part of the training state that resume must restore.
nlohmann::json dropout_states(Module& model) {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [name, m] : model.named_modules()) {
    if (auto* d = dynamic_cast<Dropout*>(m)) {
      j[name] = {std::to_string(d->rng().key()), std::to_string(d->rng().counter())};
    }
  }
  return j;
}

void restore_dropout_states(Module& model, const nlohmann::json& j) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* d = dynamic_cast<Dropout*>(m)) {
      TRANQ_CHECK_AS(FormatError, j.contains(name),
                     "checkpoint lacks the RNG state of dropout '{}'", name);
      d->rng().set_state(std::stoull(j[name][0].get<std::string>()),
                         std::stoull(j[name][1].get<std::string>()));
    }
  }
}

// Unreadable images are skipped, named on stderr (the first few of an epoch) and counted.
void report_skipped(const std::vector<std::string>& skipped, int64_t& count) {
  constexpr int64_t kNamed = 10;
  for (const std::string& what : skipped) {
    if (count < kNamed) fmt::print(stderr, "tranq: skipping unreadable image {}\n", what);
    if (count == kNamed) fmt::print(stderr, "tranq: more unreadable images skipped (counted)\n");
    ++count;
  }
}

// What identifies the training data in a checkpoint: its sample count and, for image folders,
// a fingerprint of the class list (FNV-1a over the names). Epoch orders and labels depend on
// both, so a resume on other data would silently train something else.
nlohmann::json training_data_identity(const data::SampleSource& set) {
  nlohmann::json j = {{"train_samples", set.size()}, {"classes", set.num_classes()}};
  if (const auto* folder = dynamic_cast<const data::FolderSource*>(&set)) {
    uint64_t h = 14695981039346656037ull;
    for (const std::string& name : folder->folder().classes) {
      for (const char ch : name + '\0') {
        h ^= static_cast<unsigned char>(ch);
        h *= 1099511628211ull;
      }
    }
    j["class_list"] = fmt::format("{:016x}", h);
  }
  return j;
}

// Refuses a resume whose --data is not the data the run was made with (checkpoints written
// before the identity was saved are not checked).
void check_same_training_data(const nlohmann::json& saved, const nlohmann::json& now,
                              const std::string& dir) {
  if (saved.is_null()) return;
  const int64_t n_then = saved.at("train_samples").get<int64_t>();
  const int64_t n_now = now.at("train_samples").get<int64_t>();
  if (n_then != n_now) {
    TRANQ_THROW(ValueError,
                "the training set in {} holds {} samples, the run was made with {}; --data must "
                "point to the same data",
                dir, n_now, n_then);
  }
  const int64_t k_then = saved.at("classes").get<int64_t>();
  const int64_t k_now = now.at("classes").get<int64_t>();
  if (k_then != k_now || saved.value("class_list", "") != now.value("class_list", "")) {
    TRANQ_THROW(ValueError,
                "the training set in {} has other classes than the run was made with ({} "
                "classes now, {} then{}); --data must point to the same data",
                dir, k_now, k_then, k_then == k_now ? ", under other names" : "");
  }
}

}  // namespace

double run_train(TrainConfig cfg, bool resume) {
  TRANQ_CHECK(!cfg.out.empty(), "--out RUNDIR is required");
  if (resume && fs::exists(config_path(cfg.out))) {
    // Per-invocation settings stay as given; everything else comes from the run.
    const TrainConfig given = cfg;
    cfg = config_from_json(nlohmann::json::parse(read_file(config_path(cfg.out)), nullptr, false));
    const std::vector<std::string> ignored = ignored_on_resume(given, cfg);
    if (!ignored.empty()) {
      fmt::print(stderr,
                 "tranq: note: --resume continues the run in {} with its own settings; ignored: "
                 "{}. To change them, start a new run in another --out (--init-from its "
                 "weights)\n",
                 given.out, fmt::join(ignored, ", "));
    }
    // A resumed run is bit-exact only with the thread count it ran with: keep the saved one
    // unless the user chose another (and the device likewise).
    if (given.threads_given) cfg.threads = given.threads;
    if (given.device_given) cfg.device = given.device;
    cfg.threads_given = given.threads_given;
    cfg.device_given = given.device_given;
    cfg.max_steps = given.max_steps;
    cfg.out = given.out;  // the run directory may have moved since it was made
    if (!given.data_dir.empty()) cfg.data_dir = given.data_dir;  // the data may have moved
  }
  TRANQ_CHECK(!cfg.data_dir.empty(),
              "--data DIR is required (the directory of the data set's files)");
  validate(cfg);
  const bool resuming = resume && fs::exists(checkpoint_path(cfg.out));
  // A fresh run must not leave another run's checkpoint where a later --resume would load it
  // under the new settings, nor overwrite that run's weights. --resume of a run killed before
  // its first checkpoint (but maybe after its first weights) restarts that same run.
  const bool restarting = resume && fs::exists(config_path(cfg.out));
  TRANQ_CHECK(resuming || restarting ||
                  (!fs::exists(checkpoint_path(cfg.out)) && !fs::exists(model_path(cfg.out))),
              "{} already holds a run's checkpoint or weights: continue it with --resume, or "
              "choose another --out",
              cfg.out);
  set_num_threads(cfg.threads);
  // Everything that can fail on bad input happens before the run directory is touched.
  const Device device = [&] {
    try {
      return select_device(cfg.device);
    } catch (const DeviceError& e) {
      if (!resume || cfg.device_given) throw;
      TRANQ_THROW(DeviceError,
                  "{} (the run in {} was made on {}; --device cpu continues it on "
                  "the CPU)",
                  e.what(), cfg.out, cfg.device);
    }
  }();

  data::SourceOptions train_opt, test_opt;
  train_opt.augment = cfg.augment;
  train_opt.image_size = test_opt.image_size = cfg.image_size;
  std::shared_ptr<data::SampleSource> train_set =
      data::open_dataset(cfg.dataset, cfg.data_dir, "train", train_opt);
  std::shared_ptr<data::SampleSource> test_set =
      data::open_dataset(cfg.dataset, cfg.data_dir, "test", test_opt);
  note_ignored_files(*train_set);
  note_ignored_files(*test_set);
  const int64_t in_channels = train_set->sample_shape()[0];
  data::LoaderOptions lo;
  lo.batch_size = cfg.batch_size;
  lo.shuffle = true;
  lo.seed = cfg.seed;
  lo.workers = cfg.workers;
  lo.pinned = device.is_cuda();  // page-locked batches: faster host-to-device copies
  data::Loader loader(train_set, lo);
  const int64_t batches = loader.batches_per_epoch();
  // Optimizer steps: an epoch's last step takes what is left of its batches.
  const int64_t steps_per_epoch = (batches + cfg.accum_steps - 1) / cfg.accum_steps;
  // The schedules need the run's length in steps: it must be countable.
  TRANQ_CHECK(cfg.epochs <= INT64_MAX / std::max<int64_t>(1, steps_per_epoch),
              "--epochs {} of {} steps each is more steps than a run can count", cfg.epochs,
              steps_per_epoch);
  const int64_t total_steps = cfg.epochs * steps_per_epoch;

  optim::LrScheduleOptions so = optim::run_schedule_options(cfg.lr_schedule, total_steps);
  so.warmup_steps = cfg.warmup_steps;
  auto schedule = optim::make_lr_schedule(so);
  // A resumed run's weights come from its checkpoint: --init-from is not read again.
  RunSetup run = build_run(cfg, in_channels, train_set->num_classes(), total_steps,
                           /*load_init_weights=*/!resuming);
  Module* model = run.model.get();
  model->to(device);  // before any optimizer state exists, so that it is made on the device
  optim::Optimizer* opt = run.opt.get();
  std::map<std::string, std::string> model_meta;
  if (run.qat) model_meta[kQuantMetaKey] = run.quant_meta.dump();

  fs::create_directories(cfg.out);
  const nlohmann::json data_identity = training_data_identity(*train_set);
  RunPosition pos;
  nlohmann::json resumed_window;  // the log window the checkpoint was taken in
  if (resuming) {
    nlohmann::json extra;
    NamedTensors extra_tensors;
    pos = load_checkpoint(cfg.out, *model, *opt, extra, extra_tensors, [&](const auto& saved) {
      check_same_training_data(saved.value("data", nlohmann::json()), data_identity, cfg.data_dir);
    });
    restore_dropout_states(*model, extra.value("dropout", nlohmann::json::object()));
    if (run.qat) run.qat->load_state(extra_tensors);
    resumed_window = extra.value("log_window", nlohmann::json());
    truncate_metrics(cfg.out, pos.step);
    fmt::print(stderr, "resuming {} at epoch {} batch {} (step {})\n", cfg.out, pos.epoch + 1,
               pos.batch, pos.step);
  } else {
    write_file_atomic(config_path(cfg.out), to_json(cfg).dump(2) + "\n");
    write_file_atomic(metrics_path(cfg.out), "");
    if (run.qat) {
      // Activation scales from the first training batch, then the codes the first step's
      // transitions are counted against.
      loader.start_epoch(0);
      data::Batch first;
      while (loader.next(first) && first.labels.numel() == 0) {
      }
      TRANQ_CHECK_AS(IoError, first.labels.numel() > 0,
                     "no readable training image to calibrate the activation scales with");
      quant::calibrate_activation_scales(*model, first.images.to(device));
      run.qat->initialise();
    }
  }
  MetricsLog metrics(metrics_path(cfg.out));
  Progress progress;
  model->train();

  // The steps since the last log line (of this epoch), for its transition statistics.
  TransitionWindow transitions;
  // Device TRS path (QatController::deferred): brings the host controller up to date, adding
  // every step since the last sync to `transitions` in order (each step exactly once, as the
  // host path adds it after its after_step), and raises a weight scale the device found zero or
  // non-finite. Called on log steps, before every checkpoint or model save and at the end, so
  // that no such error is saved or left unreported. Nothing to do on the host path.
  auto sync_qat = [&] {
    if (run.qat)
      run.qat->sync_for_logging([&](const quant::QatController& q) { transitions.add(q); });
  };
  using clock = std::chrono::steady_clock;
  // The current epoch's log window and image counts (reset at each epoch's start).
  clock::time_point window_start;
  int64_t window_images = 0, epoch_images = 0, epoch_skipped = 0;
  double window_loss = 0, window_ips = 0;
  int64_t window_correct = 0, window_batches = 0;
  // What a checkpoint inside a log window keeps of it, so that a resumed run writes the same
  // step lines as an uninterrupted one (all but the timings).
  auto window_state = [&] {
    return nlohmann::json{{"loss", window_loss},      {"correct", window_correct},
                          {"images", window_images},  {"batches", window_batches},
                          {"skipped", epoch_skipped}, {"transitions", transitions.state()}};
  };
  auto restore_window = [&](const nlohmann::json& j) {
    try {
      window_loss = j.at("loss").get<double>();
      window_correct = j.at("correct").get<int64_t>();
      window_images = j.at("images").get<int64_t>();
      window_batches = j.at("batches").get<int64_t>();
      epoch_skipped = j.at("skipped").get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
      TRANQ_THROW(FormatError, "checkpoint: bad log window: {}", e.what());
    }
    transitions.load_state(j.at("transitions"));
  };
  auto checkpoint = [&] {
    sync_qat();
    save_checkpoint(cfg.out, *model, *opt, pos,
                    {{"dropout", dropout_states(*model)},
                     {"log_window", window_state()},
                     {"data", data_identity}},
                    run.qat ? run.qat->state_tensors() : NamedTensors{});
  };
  double test_acc = -1;
  int64_t last_batch_index = 0;  // of the latest step, for the progress bar
  // The steps' losses and correct counts stay on the training device until flushed: on the CPU
  // after every step, on CUDA on log steps, every kProgressEvery steps, before every checkpoint
  // or model save and at an epoch's end, so that a step never waits for the device.
  StepStats stats;
  std::vector<int64_t> stats_steps;  // the optimizer step of each batch in `stats`
  constexpr int64_t kProgressEvery = 25;
  const bool flush_every_step = device.is_cpu();
  // Takes the pending steps in order, exactly as the per-step code did: the divergence check
  // (naming the first step whose loss is not finite), the sums, then the progress display.
  auto flush_stats = [&] {
    const std::vector<StepRecord> records = stats.flush();
    const std::vector<int64_t> steps = std::move(stats_steps);
    stats_steps.clear();
    if (records.empty()) return;
    for (size_t i = 0; i < records.size(); ++i) {
      const StepRecord& r = records[i];
      TRANQ_CHECK_AS(Error, std::isfinite(r.loss),
                     "training diverged: loss is {} at step {} (try a lower --lr)", r.loss,
                     steps[i] + 1);  // 1-based, as the metrics lines count steps
      pos.epoch_loss_sum += r.loss * static_cast<double>(r.n);
      pos.epoch_correct += r.correct;
      pos.epoch_seen += r.n;
      window_loss += r.loss;
      window_correct += r.correct;
      window_images += r.n;
      epoch_images += r.n;
      ++window_batches;
    }
    // A log step always flushes at once, so it is the last of its records.
    const bool log_step = cfg.log_every > 0 && pos.step % cfg.log_every == 0;
    const double secs = std::chrono::duration<double>(clock::now() - window_start).count();
    window_ips = secs > 0 ? static_cast<double>(window_images) / secs : 0.0;
    progress.update(pos.epoch, cfg.epochs, last_batch_index, batches, window_loss / window_batches,
                    static_cast<double>(window_correct) / static_cast<double>(window_images),
                    window_ips, log_step);
  };
  // The step line of the steps since the last one (stats flushed), ending at pos.step; `lr` is
  // that step's.
  auto write_step_line = [&](double lr) {
    nlohmann::json line = {{"kind", "step"},
                           {"step", pos.step},
                           {"epoch", pos.epoch + 1},
                           {"loss", window_loss / window_batches},
                           {"lr", lr},
                           {"train_acc", static_cast<double>(window_correct) / window_images},
                           {"images_per_s", window_ips}};
    if (run.qat) {
      sync_qat();
      transitions.flush_into(line, *run.qat, pos.step);
    }
    metrics.write(line);
    window_start = clock::now();
    window_loss = 0;
    window_correct = window_images = window_batches = 0;
  };
  data::DevicePrefetcher prefetcher(device);  // one copy stream and buffer pair for the run
  for (; pos.epoch < cfg.epochs; ++pos.epoch) {
    if (cfg.max_steps > 0 && pos.step >= cfg.max_steps) break;
    loader.start_epoch(pos.epoch, pos.batch);
    auto epoch_start = clock::now();
    window_start = epoch_start;
    window_images = epoch_images = epoch_skipped = 0;
    window_loss = 0;
    window_correct = window_batches = 0;
    data::Batch batch;
    sync_qat();  // normally nothing pending: the last epoch ended with a checkpoint
    transitions = TransitionWindow();  // a window does not span epochs (the host path's too)
    if (!resumed_window.is_null()) {   // resumed inside this epoch: continue its log window
      restore_window(resumed_window);
      resumed_window = nullptr;
    }
    while (pos.batch < batches) {
      if (cfg.max_steps > 0 && pos.step >= cfg.max_steps) break;
      // One optimizer step over the batches [pos.batch, group_end); checkpoints fall between
      // steps, so a resumed run starts at a step's first batch.
      const int64_t group_end = std::min(batches, pos.batch + cfg.accum_steps);
      const int64_t group = group_end - pos.batch;
      const double lr = cfg.lr * schedule->factor(pos.step);
      bool started = false;
      int64_t used = 0;  // batches with a readable sample
      for (int64_t b = pos.batch; b < group_end; ++b) {
        TRANQ_CHECK_AS(Error, loader.next(batch) && batch.index == b,
                       "data loader: expected batch {} of epoch {}", b, pos.epoch + 1);
        report_skipped(batch.skipped, epoch_skipped);
        if (batch.labels.numel() == 0) continue;  // every sample unreadable: nothing to train on
        if (!started) {
          for (auto& g : opt->param_groups()) g.lr = g.base_lr * schedule->factor(pos.step);
          if (run.qat) run.qat->before_step(*opt);  // TRS: the TALR drives the quantized weights
          opt->zero_grad();
          started = true;
        }
        // Checked here, on the host batch, so that the loss need not check them on the device.
        kernels::check_labels(batch.labels, train_set->num_classes(), "train");
        // On a GPU: queued on the prefetcher's copy stream, overlapping the last step's
        // compute, with no wait (the pinned cache keeps the batch's host memory until the copy
        // has run).
        const data::DevicePrefetcher::DeviceBatch on_device = prefetcher.upload(batch);
        const Tensor& images = on_device.images;
        const Tensor& labels = on_device.labels;
        Tensor logits = model->forward(images);
        Tensor loss =
            ops::cross_entropy(logits, labels, cfg.label_smoothing, /*labels_checked=*/true);
        // Leaf gradients accumulate over the step's batches: each adds 1/group of its own.
        (group > 1 ? ops::scale(loss, 1.0 / static_cast<double>(group)) : loss).backward();
        stats.add(loss, logits, labels);
        stats_steps.push_back(pos.step);
        ++used;
        last_batch_index = batch.index;
      }
      pos.batch = group_end;
      if (!started) continue;  // no readable sample in the whole step
      if (used < group || cfg.clip_grad_norm > 0) {
        std::vector<Tensor> params;
        for (const auto& pg : opt->param_groups())
          params.insert(params.end(), pg.params.begin(), pg.params.end());
        // A batch with no readable sample took its 1/group share of the mean: weight the others
        // 1/used instead, so the step's gradient stays the mean over the batches it had.
        if (used < group)
          optim::scale_grads(params, static_cast<double>(group) / static_cast<double>(used));
        if (cfg.clip_grad_norm > 0) optim::clip_grad_norm(params, cfg.clip_grad_norm);
      }
      opt->step();
      if (run.qat) {
        run.qat->after_step(pos.step);
        if (!run.qat->deferred()) transitions.add(*run.qat);  // else added at the log step
      }
      ++pos.step;

      const bool log_step = cfg.log_every > 0 && pos.step % cfg.log_every == 0;
      if (flush_every_step || log_step || pos.step % kProgressEvery == 0) flush_stats();
      if (log_step) write_step_line(lr);
      if (cfg.checkpoint_every > 0 && pos.step % cfg.checkpoint_every == 0 && pos.batch < batches) {
        flush_stats();  // the checkpoint holds the epoch's sums
        checkpoint();
      }
    }
    // Before the evaluation, the model save and the checkpoint.
    flush_stats();
    sync_qat();
    if (pos.batch < batches) {  // stopped by --max-steps inside the epoch: make it resumable
      checkpoint();
      break;
    }
    // The epoch's last steps, when --log-every does not divide it: a window does not span epochs.
    if (cfg.log_every > 0 && window_batches > 0)
      write_step_line(cfg.lr * schedule->factor(pos.step - 1));
    const double epoch_secs = std::chrono::duration<double>(clock::now() - epoch_start).count();
    const EvalResult eval = evaluate(*model, test_set, 256, cfg.workers);
    report_skipped(eval.skipped, epoch_skipped);
    test_acc = eval.accuracy;
    const double train_acc = static_cast<double>(pos.epoch_correct) / pos.epoch_seen;
    const double train_loss = pos.epoch_loss_sum / pos.epoch_seen;
    metrics.write({{"kind", "epoch"},
                   {"step", pos.step},
                   {"epoch", pos.epoch + 1},
                   {"loss", train_loss},
                   {"lr", cfg.lr * schedule->factor(pos.step - 1)},
                   {"train_acc", train_acc},
                   {"test_acc", test_acc},
                   {"images_per_s", epoch_secs > 0 ? epoch_images / epoch_secs : 0.0},
                   {"skipped_images", epoch_skipped}});
    progress.finish_epoch(fmt::format("epoch {}/{} loss {:.4f} train_acc {:.2f}% test_acc {:.2f}%",
                                      pos.epoch + 1, cfg.epochs, train_loss, 100 * train_acc,
                                      100 * test_acc));
    save_safetensors(model_path(cfg.out), model->state_dict(), model_meta);
    // The next epoch starts a fresh log window: the checkpoint keeps an empty one.
    window_loss = 0;
    window_correct = window_images = window_batches = epoch_skipped = 0;
    transitions = TransitionWindow();
    pos.batch = 0;
    pos.epoch_loss_sum = 0;
    pos.epoch_correct = pos.epoch_seen = 0;
    RunPosition next = pos;
    ++next.epoch;
    std::swap(pos, next);
    checkpoint();
    std::swap(pos, next);
  }
  // Every way out of the loop flushed and synced already; a run must not end with an error
  // pending.
  flush_stats();
  sync_qat();
  if (test_acc < 0) {  // resumed a finished run, or stopped early: evaluate what we have
    test_acc = evaluate(*model, test_set, 256, cfg.workers).accuracy;
    save_safetensors(model_path(cfg.out), model->state_dict(), model_meta);
  }
  return test_acc;
}

}  // namespace tranq::app
