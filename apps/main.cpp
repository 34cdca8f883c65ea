// The tranq command line: train, eval, bench. The only place in tranq that exits: library
// errors arrive as exceptions and leave as one line on stderr with exit code 2.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "apps/bench.h"
#include "apps/evaluate.h"
#include "apps/trainer.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "datasets/registry.h"
#include "models/registry.h"
#include "tranq/config.h"

namespace {

using tranq::app::TrainConfig;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "|") + x;
  return s;
}

void add_train(CLI::App& app, TrainConfig& c, bool& resume) {
  auto* t = app.add_subcommand("train", "Train a model (full precision) and evaluate it every epoch");
  t->add_option("--dataset", c.dataset, "Data set: " + join(tranq::data::dataset_names()))
      ->capture_default_str();
  t->add_option("--data", c.data_dir, "Directory holding the data set's files (kept by --resume)");
  t->add_option("--model", c.model, "Model: " + join(tranq::model_names()))->capture_default_str();
  t->add_option("--epochs", c.epochs, "Number of epochs")->capture_default_str();
  t->add_option("--batch-size", c.batch_size, "Batch size")->capture_default_str();
  t->add_option("--optimizer", c.optimizer, "Optimizer: sgd|adam|adamw")->capture_default_str();
  t->add_option("--lr", c.lr, "Base learning rate")->capture_default_str();
  t->add_option("--lr-schedule", c.lr_schedule,
                "LR schedule, per step: constant|step|multistep|cosine|linear|onecycle "
                "(step: x0.1 every third of the run; multistep: x0.1 at 50% and 75%)")
      ->capture_default_str();
  t->add_option("--warmup-steps", c.warmup_steps, "Linear LR warm-up steps")->capture_default_str();
  t->add_option("--weight-decay", c.weight_decay, "Weight decay (L2 for sgd/adam, decoupled for adamw)")
      ->capture_default_str();
  t->add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  t->add_option("--nesterov", c.nesterov, "Nesterov momentum for SGD (true|false)")->capture_default_str();
  t->add_option("--label-smoothing", c.label_smoothing, "Label smoothing of the cross-entropy")
      ->capture_default_str();
  t->add_option("--augment", c.augment,
                "Training augmentation: random crop with padding + horizontal flip (true|false)")
      ->capture_default_str();
  t->add_option("--seed", c.seed, "Seed of initialisation, data order and augmentation")
      ->capture_default_str();
  t->add_option("--threads", c.threads, "Compute threads")->capture_default_str();
  t->add_option("--workers", c.workers, "Data loading threads (0: load in the training thread)")
      ->capture_default_str();
  t->add_option("--out", c.out, "Run directory (created)")->required();
  t->add_option("--checkpoint-every", c.checkpoint_every,
                "Also checkpoint every N steps (0: only at epoch ends)")->capture_default_str();
  t->add_option("--log-every", c.log_every, "Write a metrics line every N steps")->capture_default_str();
  t->add_option("--max-steps", c.max_steps, "Stop (resumably) after N steps in total (0: no limit)")
      ->capture_default_str();
  t->add_flag("--resume", resume,
              "Continue the run in --out from its last checkpoint with the run's saved settings "
              "(from the start if it has none)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tranq: quantization-aware training with transition-rate scheduling"};
  app.require_subcommand(1);
  // A flag given twice takes its last value, so scripts can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", std::string(TRANQ_VERSION));

  TrainConfig train_cfg;
  bool resume = false;
  add_train(app, train_cfg, resume);

  struct {
    std::string model = "resnet20", weights, dataset = "fashion-mnist", data;
    int64_t batch_size = 256;
    int threads = 2;
  } ev;
  auto* e = app.add_subcommand("eval", "Evaluate weights on a data set's test split");
  e->add_option("--model", ev.model, "Model: " + join(tranq::model_names()))->capture_default_str();
  e->add_option("--weights", ev.weights, "Weights (.safetensors with PyTorch names)")->required();
  e->add_option("--dataset", ev.dataset, "Data set: " + join(tranq::data::dataset_names()))
      ->capture_default_str();
  e->add_option("--data", ev.data, "Directory holding the data set's files")->required();
  e->add_option("--batch-size", ev.batch_size, "Batch size")->capture_default_str();
  e->add_option("--threads", ev.threads, "Compute threads")->capture_default_str();

  tranq::app::BenchConfig bc;
  auto* b = app.add_subcommand("bench", "Time training steps on random data (prints one JSON line)");
  b->add_option("--model", bc.model, "Model: " + join(tranq::model_names()))->capture_default_str();
  b->add_option("--input", bc.input, "Input shape CxHxW")->capture_default_str();
  b->add_option("--batch-size", bc.batch_size, "Batch size")->capture_default_str();
  b->add_option("--iters", bc.iters, "Timed steps (median reported)")->capture_default_str();
  b->add_option("--warmup", bc.warmup, "Untimed steps first")->capture_default_str();
  b->add_option("--classes", bc.num_classes, "Number of classes")->capture_default_str();
  b->add_option("--threads", bc.threads, "Compute threads")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    const int code = app.exit(err);
    return code == 0 ? 0 : 2;
  }

  try {
    if (app.got_subcommand("train")) {
      double acc = tranq::app::run_train(train_cfg, resume);
      fmt::print("test_acc={:.2f}\n", 100 * acc);
    } else if (app.got_subcommand("eval")) {
      tranq::set_num_threads(ev.threads);
      auto set = tranq::data::load_dataset(ev.dataset, ev.data, "test");
      auto model = tranq::create_model(ev.model, set.images.size(1), set.num_classes, 0);
      try {
        model->load_state_dict(tranq::load_safetensors(ev.weights).tensors, true);
      } catch (const tranq::ValueError& err) {
        throw tranq::ValueError(fmt::format("{}: {} (is --model right?)", ev.weights, err.what()));
      }
      double acc = tranq::app::evaluate(*model, set, tranq::data::standard_normalization(ev.dataset),
                                        ev.batch_size, 1);
      fmt::print("test_acc={:.2f}\n", 100 * acc);
    } else if (app.got_subcommand("bench")) {
      fmt::print("{}\n", tranq::app::run_bench(bc));
    }
  } catch (const std::exception& ex) {
    std::string msg = ex.what();
    for (char& ch : msg)
      if (ch == '\n') ch = ' ';
    fmt::print(stderr, "tranq: error: {}\n", msg);
    return 2;
  }
  return 0;
}
