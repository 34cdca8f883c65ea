// The tranq command line: train, eval, export, convert, plot, bench. The only place in tranq that
// exits: library errors arrive as exceptions and leave as one line on stderr with exit code 2.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "apps/bench.h"
#include "apps/convert.h"
#include "apps/device.h"
#include "apps/evaluate.h"
#include "apps/plot.h"
#include "apps/run_setup.h"
#include "apps/train_config.h"
#include "apps/trainer.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "datasets/sources.h"
#include "layers/compute_precision.h"
#include "models/registry.h"
#include "tranq/config.h"

namespace {

using tranq::app::TrainConfig;

constexpr const char* kPrecisionHelp =
    "Precision of conv/linear products: fp32|bf16 (bf16: operands rounded to bfloat16, f32 "
    "sums, outputs, gradients and fp32 master weights)";

// The --precision value, or a ValueError naming the flag (one line, exit code 2).
tranq::ComputePrecision precision_flag(const std::string& s) {
  try {
    return tranq::parse_compute_precision(s);
  } catch (const tranq::ValueError& e) {
    TRANQ_THROW(tranq::ValueError, "--precision: {}", e.what());
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "|") + x;
  return s;
}

void add_train(CLI::App& app, TrainConfig& c, bool& resume) {
  auto* t =
      app.add_subcommand("train", "Train a model (full precision) and evaluate it every epoch");
  t->add_option("--dataset", c.dataset, "Data set: " + join(tranq::data::all_dataset_names()))
      ->capture_default_str();
  t->add_option("--data", c.data_dir,
                "Directory holding the data set's files (kept by --resume); imagenet|folder: "
                "DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg");
  t->add_option("--image-size", c.image_size,
                "imagenet|folder: training crop and evaluation size (0: 224; evaluation resizes "
                "the shorter side to size*256/224 first)")
      ->capture_default_str();
  t->add_option("--model", c.model, "Model: " + join(tranq::model_names()))->capture_default_str();
  t->add_option("--epochs", c.epochs, "Number of epochs")->capture_default_str();
  t->add_option("--batch-size", c.batch_size, "Batch size")->capture_default_str();
  t->add_option("--accum-steps", c.accum_steps,
                "Batches per optimizer step (gradient accumulation; the gradient is their mean). "
                "Steps, schedules, TRS and --max-steps/--log-every/--checkpoint-every count "
                "optimizer steps")
      ->capture_default_str();
  t->add_option("--clip-grad-norm", c.clip_grad_norm,
                "Clip each step's gradient to this global 2-norm, as "
                "torch.nn.utils.clip_grad_norm_ (0: no clipping)")
      ->capture_default_str();
  t->add_option("--optimizer", c.optimizer,
                "Optimizer: sgd|adam|adamw, or with transition-rate scheduling sgdt|adamt|adamwt")
      ->capture_default_str();
  t->add_option("--lr", c.lr, "Base learning rate")->capture_default_str();
  t->add_option("--lr-schedule", c.lr_schedule,
                "LR schedule, per step: constant|step|multistep|cosine|linear|onecycle "
                "(step: x0.1 every third of the run; multistep: x0.1 at 50% and 75%)")
      ->capture_default_str();
  t->add_option("--warmup-steps", c.warmup_steps, "Linear LR warm-up steps")->capture_default_str();
  t->add_option("--weight-decay", c.weight_decay,
                "Weight decay (L2 for sgd/adam, decoupled for adamw)")
      ->capture_default_str();
  t->add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  t->add_option("--nesterov", c.nesterov, "Nesterov momentum for SGD (true|false)")
      ->capture_default_str();
  t->add_option("--label-smoothing", c.label_smoothing, "Label smoothing of the cross-entropy")
      ->capture_default_str();
  t->add_option("--augment", c.augment,
                "Training augmentation: random crop with padding + horizontal flip (true|false)")
      ->capture_default_str();
  t->add_option("--seed", c.seed, "Seed of initialisation, data order and augmentation")
      ->capture_default_str();
  t->add_option("--threads", c.threads, "Compute threads (--resume: the run's unless given)")
      ->capture_default_str();
  t->add_option("--device", c.device,
                "Where to train: cpu, cuda or cuda:N (--resume: the run's unless given)")
      ->capture_default_str();
  t->add_option("--workers", c.workers, "Data loading threads (0: load in the training thread)")
      ->capture_default_str();
  t->add_option("--out", c.out, "Run directory (created)")->required();
  t->add_option("--checkpoint-every", c.checkpoint_every,
                "Also checkpoint every N steps (0: only at epoch ends)")
      ->capture_default_str();
  t->add_option("--log-every", c.log_every, "Write a metrics line every N steps")
      ->capture_default_str();
  t->add_option("--max-steps", c.max_steps, "Stop (resumably) after N steps in total (0: no limit)")
      ->capture_default_str();
  t->add_option("--init-from", c.init_from,
                "Initial full-precision weights (.safetensors, PyTorch names)");
  t->add_option("--strict", c.strict,
                "With --init-from: require every tensor to match (true|false)")
      ->capture_default_str();
  // QAT and TRS.
  t->add_option("--wbits", c.weight_bits, "QAT weight bits 1-8 (0: full precision)")
      ->capture_default_str();
  t->add_option("--abits", c.act_bits, "QAT activation bits 1-8 (0: same as --wbits)")
      ->capture_default_str();
  t->add_option("--first-last-bits", c.first_last_bits,
                "Bits of the first conv and last linear layer (0: keep them full precision)")
      ->capture_default_str();
  t->add_option("--per-channel", c.per_channel, "One weight scale per output channel (true|false)")
      ->capture_default_str();
  t->add_option("--scale-init", c.scale_init, "Quantizer scale initialisation: 3std|lsq")
      ->capture_default_str();
  t->add_option("--lsq-grad-scale", c.lsq_grad_scale,
                "Scale gradients by 1/sqrt(N*Qp) (true|false)")
      ->capture_default_str();
  t->add_option("--weight-scale", c.weight_scale,
                "QAT weight scales: auto (learned by sgd/adam/adamw, frozen under TRS), learned, "
                "frozen")
      ->check(CLI::IsMember({"auto", "learned", "frozen"}))
      ->capture_default_str();
  t->add_option("--act-sign", c.act_sign,
                "QAT input quantizers: unsigned (the method), or auto: signed where the "
                "calibration batch holds negative inputs (e.g. MobileNetV2's block inputs)")
      ->check(CLI::IsMember({"unsigned", "auto"}))
      ->capture_default_str();
  t->add_option("--scale-lr", c.scale_lr, "LR of the quantizer scales (no momentum, no decay)")
      ->capture_default_str();
  t->add_option("--target-tr", c.target_tr,
                "TRS: initial target transition rate R_0 (0: --tr-factor*sqrt(wbits))")
      ->capture_default_str();
  t->add_option("--tr-factor", c.tr_factor, "TRS: lambda of R_0 = lambda*sqrt(wbits)")
      ->capture_default_str();
  t->add_option("--target-tr-schedule", c.target_tr_schedule,
                "TRS: shape of the target TR: cosine|step|multistep|linear|constant")
      ->capture_default_str();
  t->add_option("--talr-rule", c.talr_rule, "TRS: TALR update rule: multiplicative|additive")
      ->capture_default_str();
  t->add_option("--talr-init", c.talr_init, "TRS: initial TALR (0: --lr)")->capture_default_str();
  t->add_option("--talr-gain", c.talr_gain,
                "TRS: step size eta of the additive rule (0: (1-m)*talr_init/R_0)")
      ->capture_default_str();
  t->add_option("--tr-momentum", c.tr_momentum,
                "TRS: momentum of the TR EMA and the multiplicative rule; -1: from the run length, "
                "1 - 1/clamp(steps/50, 10, 100) (0.99 for runs of 5000+ steps)")
      ->capture_default_str();
  t->add_option("--precision", c.precision, std::string(kPrecisionHelp) + "; kept by --resume")
      ->capture_default_str();
  t->add_flag("--resume", resume,
              "Continue the run in --out from its last checkpoint with the run's saved settings "
              "(from the start if it has none)");
}

}  // namespace

// OpenMP threads that spin between parallel regions starve the data loader's threads when the
// compute threads already occupy every core (measured: 5x slower training on 2 cores). Unless
// the user chose a wait policy, run with passive waiting: re-exec once with it set, because
// the OpenMP runtime reads it when it loads, before main().
void ensure_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

int main(int argc, char** argv) {
  ensure_passive_openmp_wait(argv);
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
    int64_t batch_size = 256, image_size = 0;
    int threads = 2, workers = 1;
    std::string device = "cpu";
    std::string precision = "fp32";
  } ev;
  auto* e = app.add_subcommand("eval", "Evaluate weights on a data set's test split");
  e->add_option("--model", ev.model, "Model: " + join(tranq::model_names()))->capture_default_str();
  e->add_option("--weights", ev.weights, "Weights (.safetensors with PyTorch names)")->required();
  e->add_option("--dataset", ev.dataset, "Data set: " + join(tranq::data::all_dataset_names()))
      ->capture_default_str();
  e->add_option("--data", ev.data, "Directory holding the data set's files")->required();
  e->add_option("--image-size", ev.image_size, "imagenet|folder: evaluation crop size (0: 224)")
      ->capture_default_str();
  e->add_option("--batch-size", ev.batch_size, "Batch size")->capture_default_str();
  e->add_option("--threads", ev.threads, "Compute threads")->capture_default_str();
  e->add_option("--workers", ev.workers, "Data loading threads")->capture_default_str();
  e->add_option("--device", ev.device, "cpu, cuda or cuda:N")->capture_default_str();
  e->add_option("--precision", ev.precision, kPrecisionHelp)->capture_default_str();

  tranq::app::BenchConfig bc;
  auto* b =
      app.add_subcommand("bench", "Time training steps on random data (prints one JSON line)");
  b->add_option("--model", bc.model, "Model: " + join(tranq::model_names()))->capture_default_str();
  b->add_option("--input", bc.input, "Input shape CxHxW")->capture_default_str();
  b->add_option("--batch-size", bc.batch_size, "Batch size")->capture_default_str();
  b->add_option("--iters", bc.iters, "Timed steps (median reported)")->capture_default_str();
  b->add_option("--warmup", bc.warmup, "Untimed steps first")->capture_default_str();
  b->add_option("--classes", bc.num_classes, "Number of classes")->capture_default_str();
  b->add_option("--threads", bc.threads, "Compute threads")->capture_default_str();
  b->add_option("--device", bc.device, "cpu, cuda or cuda:N")->capture_default_str();
  b->add_option("--optimizer", bc.optimizer, "sgd|adam|adamw|sgdt|adamt|adamwt")
      ->capture_default_str();
  b->add_option("--wbits", bc.weight_bits, "QAT weight bits (0: full precision)")
      ->capture_default_str();
  b->add_option("--abits", bc.act_bits, "QAT activation bits (0: same as --wbits)")
      ->capture_default_str();
  b->add_option("--precision", bc.precision, kPrecisionHelp)->capture_default_str();
  b->add_flag("--tf32", bc.tf32,
              "Let fp32 GEMMs and convolutions on CUDA use TF32 tensor cores (10-bit products; "
              "PyTorch's default for convolutions). Off: products as exact as the CPU's");

  struct {
    std::string model = "resnet20", weights, dataset = "fashion-mnist", data, out, device = "cpu";
  } ex;
  auto* x =
      app.add_subcommand("export", "Write the integer model of QAT weights: int8 codes and scales");
  x->add_option("--model", ex.model, "Model: " + join(tranq::model_names()))->capture_default_str();
  x->add_option("--dataset", ex.dataset, "Data set the model was trained on (channels, classes)")
      ->capture_default_str();
  x->add_option("--data", ex.data, "folder data sets: their directory (the classes are counted)");
  x->add_option("--weights", ex.weights, "QAT weights (RUNDIR/model.safetensors)")->required();
  x->add_option("--out", ex.out, "Output .safetensors")->required();
  x->add_option("--device", ex.device,
                "Where the codes are computed: cpu, cuda or cuda:N (the same codes either way)")
      ->capture_default_str();

  struct {
    std::string model = "resnet20", weights, out;
  } cv;
  auto* cvt = app.add_subcommand(
      "convert",
      "Write torchvision-named full-precision weights (for PyTorch or --init-from) from "
      "a run's model.safetensors or checkpoint.safetensors, QAT runs included");
  cvt->add_option("--model", cv.model, "Model: " + join(tranq::model_names()))
      ->capture_default_str();
  cvt->add_option("--weights", cv.weights,
                  "Input: RUNDIR/model.safetensors or RUNDIR/checkpoint.safetensors")
      ->required();
  cvt->add_option("--out", cv.out, "Output .safetensors")->required();

  std::string plot_dir, plot_out;
  auto* pl =
      app.add_subcommand("plot", "Draw a run's loss, accuracy, transition rates and TALR as SVG");
  pl->add_option("RUNDIR", plot_dir, "Run directory (reads metrics.jsonl)")->required();
  pl->add_option("--out", plot_out, "Output .svg")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    if (err.get_exit_code() == 0) return app.exit(err);  // --help
    fmt::print(stderr, "tranq: error: {} (see tranq {} --help)\n", err.what(),
               app.get_subcommands().empty() ? std::string("")
                                             : app.get_subcommands().front()->get_name());
    return 2;
  }

  try {
    if (app.got_subcommand("train")) {
      precision_flag(train_cfg.precision);  // before anything is written
      if (resume) {                         // not given again: the run's own values (run_train)
        CLI::App* t = app.get_subcommand("train");
        train_cfg.threads_given = t->get_option("--threads")->count() > 0;
        train_cfg.device_given = t->get_option("--device")->count() > 0;
        for (const CLI::Option* o : t->get_options())
          if (o->count() > 0 && !o->get_lnames().empty())
            train_cfg.given_keys.push_back(tranq::app::config_key_of_flag(o->get_lnames()[0]));
      }
      double acc = tranq::app::run_train(train_cfg, resume);
      fmt::print("test_acc={:.2f}\n", 100 * acc);
    } else if (app.got_subcommand("eval")) {
      // Before the data set is opened, as train does.
      tranq::app::validate_loading_flags(ev.batch_size, ev.image_size, ev.threads, ev.workers);
      tranq::set_num_threads(ev.threads);
      const tranq::ComputePrecision precision = precision_flag(ev.precision);
      const tranq::Device device = tranq::app::select_device(ev.device);
      tranq::data::SourceOptions so;
      so.augment = false;
      so.image_size = ev.image_size;
      auto set = tranq::data::open_dataset(ev.dataset, ev.data, "test", so);
      tranq::app::note_ignored_files(*set);
      auto content = tranq::load_safetensors(ev.weights);
      // The class count of the training split, which the model was made for (an image
      // folder's val split may lack classes).
      const auto shape = tranq::data::dataset_shape(ev.dataset, ev.data);
      auto model = tranq::app::model_for_weights(ev.model, set->sample_shape()[0], shape.classes,
                                                 content.metadata);
      tranq::app::load_weights(*model, content, ev.weights, ev.dataset);
      tranq::set_compute_precision(*model, precision);
      model->to(device);
      auto r = tranq::app::evaluate(*model, set, ev.batch_size, ev.workers);
      if (!r.skipped.empty())
        fmt::print(stderr, "tranq: skipped {} unreadable images, first: {}\n", r.skipped.size(),
                   r.skipped.front());
      fmt::print("test_acc={:.2f}\n", 100 * r.accuracy);
    } else if (app.got_subcommand("export")) {
      const tranq::Device device = tranq::app::select_device(ex.device);
      auto content = tranq::load_safetensors(ex.weights);
      const auto shape = tranq::data::dataset_shape(ex.dataset, ex.data);
      auto model =
          tranq::app::model_for_weights(ex.model, shape.channels, shape.classes, content.metadata);
      tranq::app::load_weights(*model, content, ex.weights, ex.dataset);
      model->to(device);
      auto out = tranq::app::export_integer_model(*model, content.metadata);
      tranq::save_safetensors(ex.out, out.tensors, out.metadata);
      fmt::print("wrote {} ({} tensors)\n", ex.out, out.tensors.size());
    } else if (app.got_subcommand("convert")) {
      auto r = tranq::app::convert_weights(cv.model, cv.weights, cv.out);
      fmt::print("wrote {} ({} tensors, {} input channels, {} classes; {} tensors left out)\n",
                 cv.out, r.tensors, r.in_channels, r.classes, r.dropped);
    } else if (app.got_subcommand("plot")) {
      tranq::app::write_run_plot(plot_dir, plot_out);
    } else if (app.got_subcommand("bench")) {
      precision_flag(bc.precision);
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
