#pragma once
// Settings of one `tranq train` run. Saved as RUNDIR/config.json so that --resume continues
// with the run's own settings.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tranq::app {

struct TrainConfig {
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  std::string model = "resnet20";
  int64_t epochs = 10;
  int64_t batch_size = 128;
  std::string optimizer = "sgd";
  double lr = 0.1;
  std::string lr_schedule = "cosine";
  int64_t warmup_steps = 0;
  double weight_decay = 5e-4;
  double momentum = 0.9;
  bool nesterov = true;
  double label_smoothing = 0.0;
  bool augment = true;
  uint64_t seed = 0;
  int threads = 2;               // per invocation: --resume keeps the value given
  int workers = 1;
  std::string out;
  int64_t checkpoint_every = 0;  // 0: only at epoch ends
  int64_t log_every = 50;
  int64_t max_steps = 0;         // per invocation: stop after this many steps in total (0: none)
};

nlohmann::json to_json(const TrainConfig& c);
TrainConfig config_from_json(const nlohmann::json& j);  // FormatError on missing/mistyped keys

}  // namespace tranq::app
