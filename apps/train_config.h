#pragma once
// Settings of one `tranq train` run. Saved as RUNDIR/config.json so that --resume continues
// with the run's own settings.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tranq::app {

struct TrainConfig {
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  std::string model = "resnet20";
  int64_t epochs = 10;
  int64_t batch_size = 128;
  // Gradient accumulation: batches of batch_size per optimizer step. The step's gradient is the
  // mean of its batches' (mean-loss) gradients; the LR schedule, TRS (transition counts once
  // per update), --max-steps, --log-every and --checkpoint-every count optimizer steps. Batch
  // norm still normalises each batch on its own, as in PyTorch.
  int64_t accum_steps = 1;
  // > 0: clip the step's gradient to this global 2-norm (torch.nn.utils.clip_grad_norm_).
  double clip_grad_norm = 0;
  std::string optimizer = "sgd";
  double lr = 0.1;
  std::string lr_schedule = "cosine";
  int64_t warmup_steps = 0;
  double weight_decay = 5e-4;
  double momentum = 0.9;
  bool nesterov = true;
  double label_smoothing = 0.0;
  bool augment = true;
  int64_t image_size = 0;  // image-folder data sets: crop size (0: 224)
  uint64_t seed = 0;
  int threads = 2;
  std::string device = "cpu";  // cpu, cuda, cuda:N
  // Not saved: false where the command line left threads/device out, so that --resume keeps
  // the run's own (a CPU run is bit-exact only with its thread count).
  bool threads_given = true, device_given = true;
  // Not saved: the config keys (to_json's names) of the flags the command line gave, so that
  // --resume can say which of them it ignores in favour of the run's own settings.
  std::vector<std::string> given_keys;
  int workers = 1;
  std::string out;
  int64_t checkpoint_every = 0;  // 0: only at epoch ends
  int64_t log_every = 50;
  int64_t max_steps = 0;  // per invocation: stop after this many steps in total (0: none)
  // Precision of the conv/linear products: fp32 or bf16 (autocast with fp32 master weights,
  // kernels/precision.h). Saved with the run, so --resume keeps it.
  std::string precision = "fp32";

  // Initial weights (full precision, PyTorch names); strict: no missing/unexpected tensors.
  std::string init_from;
  bool strict = true;
  // QAT: weight_bits 0 trains in full precision.
  int weight_bits = 0;
  int act_bits = 0;         // 0 with weight_bits > 0: same as weight_bits
  int first_last_bits = 0;  // 0: first conv and last linear stay full precision
  bool per_channel = false;
  std::string scale_init = "3std";
  bool lsq_grad_scale = false;
  double scale_lr = 0.01;  // LR of the quantizer scales (no momentum, no weight decay)
  // auto: learned by plain optimizers, frozen under TRS (the method); learned | frozen: forced.
  std::string weight_scale = "auto";
  // Input quantizers: unsigned (the method), or auto: signed where the calibration batch holds
  // a negative input (quant::QuantSpec::signed_act_auto).
  std::string act_sign = "unsigned";
  // TRS (optimizers sgdt, adamt, adamwt).
  double target_tr = 0;  // R_0; 0: tr_factor * sqrt(weight_bits)
  double tr_factor = 5e-3;
  std::string target_tr_schedule = "cosine";
  std::string talr_rule = "multiplicative";
  double talr_init = 0;     // 0: --lr (the TALR starts where the plain optimizer's LR does)
  double talr_gain = 0;     // additive rule's eta; 0: the controller's default
  double tr_momentum = -1;  // < 0: optim::auto_momentum of the run's steps
};

// "sgdt" -> "sgd" etc.; the name itself for plain optimizers.
std::string base_optimizer(const std::string& name);
bool is_trs_optimizer(const std::string& name);

// ValueError naming the flag when a setting is out of its range, so that a run fails before
// it writes anything (a value the range allows may still be refused later, by name).
void validate(const TrainConfig& c);

// The flags of train and eval that size the data loading and compute (--batch-size,
// --image-size, --threads, --workers): ValueError naming the flag, as validate() does for train.
void validate_loading_flags(int64_t batch_size, int64_t image_size, int threads, int workers);

nlohmann::json to_json(const TrainConfig& c);
TrainConfig config_from_json(const nlohmann::json& j);  // FormatError on missing/mistyped keys

// The to_json key a train flag sets ("wbits" -> "weight_bits", "lr-schedule" -> "lr_schedule").
std::string config_key_of_flag(const std::string& flag);
// What --resume ignores: the flags given (given.given_keys) whose values differ from the run's
// saved settings, other than the per-invocation ones (--threads, --device, --max-steps, --out,
// --data), as "--epochs 5 (the run's: 2)".
std::vector<std::string> ignored_on_resume(const TrainConfig& given, const TrainConfig& run);

}  // namespace tranq::app
