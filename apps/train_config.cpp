#include "apps/train_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tranq::app {

// clang-format off
#define TRANQ_CONFIG_FIELDS(X)                                                                   \
  X(dataset) X(data_dir) X(model) X(epochs) X(batch_size) X(optimizer) X(lr) X(lr_schedule)     \
  X(warmup_steps) X(weight_decay) X(momentum) X(nesterov) X(label_smoothing) X(augment) X(seed) \
  X(threads) X(workers) X(out) X(checkpoint_every) X(log_every) X(max_steps) X(init_from)    \
  X(strict) X(weight_bits) X(act_bits) X(first_last_bits) X(per_channel) X(scale_init)           \
  X(lsq_grad_scale) X(scale_lr) X(target_tr) X(tr_factor) X(target_tr_schedule) X(talr_rule)     \
  X(talr_init) X(talr_gain) X(tr_momentum)
// clang-format on

bool is_trs_optimizer(const std::string& name) {
  return name == "sgdt" || name == "adamt" || name == "adamwt";
}

std::string base_optimizer(const std::string& name) {
  return is_trs_optimizer(name) ? name.substr(0, name.size() - 1) : name;
}

void validate_loading_flags(int64_t batch_size, int64_t image_size, int threads, int workers) {
  TRANQ_CHECK(batch_size >= 1, "--batch-size must be at least 1, got {}", batch_size);
  TRANQ_CHECK(image_size >= 0 && image_size <= 8192,
              "--image-size must be in 1..8192 (0: the default 224), got {}", image_size);
  TRANQ_CHECK(threads >= 1, "--threads must be at least 1, got {}", threads);
  TRANQ_CHECK(workers >= 0, "--workers must be >= 0, got {}", workers);
}

void validate(const TrainConfig& c) {
  TRANQ_CHECK(c.epochs >= 1, "--epochs must be at least 1, got {}", c.epochs);
  validate_loading_flags(c.batch_size, c.image_size, c.threads, c.workers);
  TRANQ_CHECK(c.accum_steps >= 1 && c.accum_steps <= 4096,
              "--accum-steps must be in 1..4096 (batches per optimizer step), got {}",
              c.accum_steps);
  TRANQ_CHECK(c.clip_grad_norm >= 0 && std::isfinite(c.clip_grad_norm),
              "--clip-grad-norm must be >= 0 (0: no clipping), got {}", c.clip_grad_norm);
  TRANQ_CHECK(c.lr > 0, "--lr must be positive, got {}", c.lr);
  TRANQ_CHECK(c.warmup_steps >= 0, "--warmup-steps must be >= 0, got {}", c.warmup_steps);
  TRANQ_CHECK(c.weight_decay >= 0, "--weight-decay must be >= 0, got {}", c.weight_decay);
  TRANQ_CHECK(c.momentum >= 0 && c.momentum < 1, "--momentum must be in [0, 1), got {}",
              c.momentum);
  TRANQ_CHECK(c.label_smoothing >= 0 && c.label_smoothing <= 1,
              "--label-smoothing must be in [0, 1], got {}", c.label_smoothing);
  TRANQ_CHECK(c.checkpoint_every >= 0, "--checkpoint-every must be >= 0 (0: at epoch ends), got {}",
              c.checkpoint_every);
  TRANQ_CHECK(c.log_every >= 0, "--log-every must be >= 0 (0: no step lines), got {}", c.log_every);
  TRANQ_CHECK(c.max_steps >= 0, "--max-steps must be >= 0 (0: no limit), got {}", c.max_steps);
  TRANQ_CHECK(c.weight_bits >= 0 && c.weight_bits <= 8,
              "--wbits must be in 1..8 (0: full precision), got {}", c.weight_bits);
  TRANQ_CHECK(c.act_bits >= 0 && c.act_bits <= 8,
              "--abits must be in 1..8 (0: same as --wbits), got {}", c.act_bits);
  TRANQ_CHECK(c.first_last_bits >= 0 && c.first_last_bits <= 8,
              "--first-last-bits must be in 1..8 (0: full precision), got {}", c.first_last_bits);
  TRANQ_CHECK(c.act_sign == "unsigned" || c.act_sign == "auto",
              "--act-sign must be unsigned or auto, got '{}'", c.act_sign);
  if (c.weight_bits == 0) {
    TRANQ_CHECK(c.act_bits == 0 && c.first_last_bits == 0 && c.act_sign == "unsigned",
                "--abits, --first-last-bits and --act-sign quantize a QAT run: give --wbits too");
  }
  TRANQ_CHECK(c.scale_lr >= 0, "--scale-lr must be >= 0, got {}", c.scale_lr);
  TRANQ_CHECK(c.target_tr >= 0 && c.target_tr < 1,
              "--target-tr must be in [0, 1) (0: --tr-factor * sqrt(wbits)), got {}", c.target_tr);
  TRANQ_CHECK(c.tr_factor > 0, "--tr-factor must be positive, got {}", c.tr_factor);
  TRANQ_CHECK(c.talr_init >= 0, "--talr-init must be >= 0 (0: --lr), got {}", c.talr_init);
  TRANQ_CHECK(c.talr_gain >= 0, "--talr-gain must be >= 0 (0: the default), got {}", c.talr_gain);
  TRANQ_CHECK(c.tr_momentum < 1, "--tr-momentum must be below 1 (< 0: from the run length), got {}",
              c.tr_momentum);
}

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j;
#define X(f) j[#f] = c.f;
  TRANQ_CONFIG_FIELDS(X)
#undef X
  j["image_size"] = c.image_size;
  j["accum_steps"] = c.accum_steps;
  j["clip_grad_norm"] = c.clip_grad_norm;
  j["device"] = c.device;
  j["precision"] = c.precision;
  j["weight_scale"] = c.weight_scale;
  j["act_sign"] = c.act_sign;
  return j;
}

std::string config_key_of_flag(const std::string& flag) {
  if (flag == "data") return "data_dir";
  if (flag == "wbits") return "weight_bits";
  if (flag == "abits") return "act_bits";
  std::string key = flag;
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

std::vector<std::string> ignored_on_resume(const TrainConfig& given, const TrainConfig& run) {
  // Settings that each invocation chooses (run_train takes them from the command line).
  static const char* const kPerInvocation[] = {"threads", "device",   "max_steps",
                                               "out",     "data_dir", "resume"};
  const nlohmann::json g = to_json(given), r = to_json(run);
  std::vector<std::string> out;
  for (const std::string& key : given.given_keys) {
    if (std::find(std::begin(kPerInvocation), std::end(kPerInvocation), key) !=
        std::end(kPerInvocation))
      continue;
    if (!g.contains(key) || !r.contains(key) || g.at(key) == r.at(key)) continue;
    std::string flag = key;
    if (key == "weight_bits") flag = "wbits";
    if (key == "act_bits") flag = "abits";
    std::replace(flag.begin(), flag.end(), '_', '-');
    out.push_back(fmt::format("--{} {} (the run's: {})", flag, g.at(key).dump(), r.at(key).dump()));
  }
  return out;
}

TrainConfig config_from_json(const nlohmann::json& j) {
  TrainConfig c;
  try {
#define X(f) j.at(#f).get_to(c.f);
    TRANQ_CONFIG_FIELDS(X)
#undef X
    // Absent in runs made before they existed.
    c.image_size = j.value("image_size", int64_t{0});
    c.accum_steps = j.value("accum_steps", int64_t{1});
    c.clip_grad_norm = j.value("clip_grad_norm", 0.0);
    c.device = j.value("device", std::string("cpu"));
    c.precision = j.value("precision", std::string("fp32"));
    c.weight_scale = j.value("weight_scale", std::string("auto"));
    c.act_sign = j.value("act_sign", std::string("unsigned"));
  } catch (const nlohmann::json::exception& e) {
    TRANQ_THROW(FormatError, "run config is incomplete or mistyped: {}", e.what());
  }
  return c;
}

}  // namespace tranq::app
