#include "apps/metrics.h"

#include "core/error.h"

namespace tranq::app {

MetricsLog::MetricsLog(const std::string& path) : f_(std::fopen(path.c_str(), "ab")) {
  if (!f_) TRANQ_THROW(IoError, "cannot open {} for appending", path);
}

MetricsLog::~MetricsLog() {
  std::fclose(f_);
}

void MetricsLog::write(const nlohmann::json& j) {
  std::string line = j.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    TRANQ_THROW(IoError, "cannot append to metrics.jsonl (disk full?)");
}

void TransitionWindow::add(const quant::QatController& qat) {
  const auto& last = qat.last();
  layers_.resize(last.size());
  for (size_t i = 0; i < last.size(); ++i) {
    layers_[i].tr += last[i].tr;
    layers_[i].osc += last[i].osc;
    layers_[i].near += last[i].near;
  }
  const auto t = qat.total();
  total_.tr += t.tr;
  total_.osc += t.osc;
  total_.near += t.near;
  ++steps_;
}

void TransitionWindow::flush_into(nlohmann::json& j, const quant::QatController& qat,
                                  int64_t step) {
  if (steps_ == 0) return;
  const double n = static_cast<double>(steps_);
  const auto* trs = qat.trs();
  // The target that the last step was steered towards.
  const double target = trs ? trs->target(step - 1) : 0.0;
  nlohmann::json layers = nlohmann::json::object();
  double ema_sum = 0, talr_sum = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    nlohmann::json l = {
        {"tr", layers_[i].tr / n}, {"osc", layers_[i].osc / n}, {"near", layers_[i].near / n}};
    if (trs) {
      l["tr_ema"] = trs->ema(i);
      l["target_tr"] = target;
      l["talr"] = trs->talr(i);
      ema_sum += trs->ema(i);
      talr_sum += trs->talr(i);
    }
    layers[qat.last()[i].name] = l;
  }
  j["tr"] = total_.tr / n;
  j["osc"] = total_.osc / n;
  j["near"] = total_.near / n;
  if (trs && !layers_.empty()) {
    j["tr_ema"] = ema_sum / static_cast<double>(layers_.size());
    j["target_tr"] = target;
    j["talr"] = talr_sum / static_cast<double>(layers_.size());
  }
  j["layers"] = layers;
  for (auto& l : layers_) l = Sums{};
  total_ = Sums{};
  steps_ = 0;
}

nlohmann::json TransitionWindow::state() const {
  auto sums = [](const Sums& x) { return nlohmann::json::array({x.tr, x.osc, x.near}); };
  nlohmann::json layers = nlohmann::json::array();
  for (const Sums& l : layers_) layers.push_back(sums(l));
  return {{"steps", steps_}, {"total", sums(total_)}, {"layers", layers}};
}

void TransitionWindow::load_state(const nlohmann::json& j) {
  auto sums = [](const nlohmann::json& a) {
    TRANQ_CHECK_AS(FormatError, a.is_array() && a.size() == 3,
                   "checkpoint: bad transition window sums {}", a.dump());
    return Sums{a[0].get<double>(), a[1].get<double>(), a[2].get<double>()};
  };
  try {
    steps_ = j.at("steps").get<int64_t>();
    total_ = sums(j.at("total"));
    layers_.clear();
    for (const auto& l : j.at("layers")) layers_.push_back(sums(l));
  } catch (const nlohmann::json::exception& e) {
    TRANQ_THROW(FormatError, "checkpoint: bad transition window: {}", e.what());
  }
}

}  // namespace tranq::app
