#include "apps/train_config.h"

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

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j;
#define X(f) j[#f] = c.f;
  TRANQ_CONFIG_FIELDS(X)
#undef X
  j["image_size"] = c.image_size;
  j["device"] = c.device;
  j["precision"] = c.precision;
  j["weight_scale"] = c.weight_scale;
  return j;
}

TrainConfig config_from_json(const nlohmann::json& j) {
  TrainConfig c;
  try {
#define X(f) j.at(#f).get_to(c.f);
    TRANQ_CONFIG_FIELDS(X)
#undef X
    // Absent in runs made before they existed.
    c.image_size = j.value("image_size", int64_t{0});
    c.device = j.value("device", std::string("cpu"));
    c.precision = j.value("precision", std::string("fp32"));
    c.weight_scale = j.value("weight_scale", std::string("auto"));
  } catch (const nlohmann::json::exception& e) {
    TRANQ_THROW(FormatError, "run config is incomplete or mistyped: {}", e.what());
  }
  return c;
}

}  // namespace tranq::app
