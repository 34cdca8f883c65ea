#include "apps/run_files.h"

#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/safetensors.h"

namespace tranq::app {

namespace fs = std::filesystem;

std::string config_path(const std::string& d) { return (fs::path(d) / "config.json").string(); }
std::string checkpoint_path(const std::string& d) {
  return (fs::path(d) / "checkpoint.safetensors").string();
}
std::string model_path(const std::string& d) { return (fs::path(d) / "model.safetensors").string(); }
std::string metrics_path(const std::string& d) { return (fs::path(d) / "metrics.jsonl").string(); }

namespace {
constexpr const char* kFormat = "tranq-checkpoint-1";
}

void save_checkpoint(const std::string& run_dir, const Module& model, const optim::Optimizer& opt,
                     const RunPosition& pos, const nlohmann::json& extra,
                     const NamedTensors& extra_tensors) {
  NamedTensors tensors;
  for (auto& [n, t] : model.state_dict()) tensors.emplace_back("model/" + n, t);
  for (auto& [n, t] : opt.state_tensors()) tensors.emplace_back("optim/" + n, t);
  for (auto& [n, t] : extra_tensors) tensors.emplace_back("extra/" + n, t);
  nlohmann::json meta = {{"step", pos.step},
                         {"epoch", pos.epoch},
                         {"batch", pos.batch},
                         {"epoch_loss_sum", pos.epoch_loss_sum},
                         {"epoch_correct", pos.epoch_correct},
                         {"epoch_seen", pos.epoch_seen},
                         {"optimizer", opt.name()},
                         {"optimizer_steps", opt.steps()},
                         {"extra", extra}};
  save_safetensors(checkpoint_path(run_dir), tensors, {{"format", kFormat}, {"state", meta.dump()}});
}

RunPosition load_checkpoint(const std::string& run_dir, Module& model, optim::Optimizer& opt,
                            nlohmann::json& extra, NamedTensors& extra_tensors,
                            const std::function<void(const nlohmann::json&)>& check_extra) {
  const std::string path = checkpoint_path(run_dir);
  SafetensorsContent content = load_safetensors(path);
  auto fmt_it = content.metadata.find("format");
  auto state_it = content.metadata.find("state");
  if (fmt_it == content.metadata.end() || fmt_it->second != kFormat ||
      state_it == content.metadata.end()) {
    TRANQ_THROW(FormatError, "{}: not a tranq checkpoint (metadata 'format' must be '{}')", path,
                kFormat);
  }
  NamedTensors model_t, optim_t;
  for (auto& [n, t] : content.tensors) {
    if (n.rfind("model/", 0) == 0) {
      model_t.emplace_back(n.substr(6), t);
    } else if (n.rfind("optim/", 0) == 0) {
      optim_t.emplace_back(n.substr(6), t);
    } else if (n.rfind("extra/", 0) == 0) {
      extra_tensors.emplace_back(n.substr(6), t);
    } else {
      TRANQ_THROW(FormatError, "{}: unexpected tensor '{}' in checkpoint", path, n);
    }
  }
  RunPosition pos;
  try {
    nlohmann::json meta = nlohmann::json::parse(state_it->second);
    extra = meta.at("extra");
    if (check_extra) check_extra(extra);
    if (meta.at("optimizer").get<std::string>() != opt.name()) {
      TRANQ_THROW(FormatError, "{}: checkpoint was written by optimizer '{}', the run uses '{}'",
                  path, meta.at("optimizer").get<std::string>(), opt.name());
    }
    pos.step = meta.at("step");
    pos.epoch = meta.at("epoch");
    pos.batch = meta.at("batch");
    pos.epoch_loss_sum = meta.at("epoch_loss_sum");
    pos.epoch_correct = meta.at("epoch_correct");
    pos.epoch_seen = meta.at("epoch_seen");
    try {
      model.load_state_dict(model_t, true);
      opt.load_state(optim_t, meta.at("optimizer_steps").get<int64_t>());
    } catch (const ValueError& e) {
      TRANQ_THROW(FormatError, "{}: checkpoint does not match the run's model/optimizer: {}", path,
                  e.what());
    }
  } catch (const nlohmann::json::exception& e) {
    TRANQ_THROW(FormatError, "{}: corrupt checkpoint state: {}", path, e.what());
  }
  return pos;
}

void truncate_metrics(const std::string& run_dir, int64_t step) {
  const std::string path = metrics_path(run_dir);
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no trailing newline: a torn write
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() > step) continue;
    kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace tranq::app
