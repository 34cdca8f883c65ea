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

namespace {

double osc_share(int64_t oscillated, int64_t changed) {
  return changed > 0 ? static_cast<double>(oscillated) / static_cast<double>(changed) : 0.0;
}

}  // namespace

void TransitionWindow::add(const quant::QatController& qat) {
  auto accumulate = [](Sums& s, const quant::LayerTransitions& l) {
    s.tr += l.tr;
    s.near += l.near;
    s.changed += l.counts.changed;
    s.oscillated += l.counts.oscillated;
  };
  const auto& last = qat.last();
  layers_.resize(last.size());
  for (size_t i = 0; i < last.size(); ++i) accumulate(layers_[i], last[i]);
  accumulate(total_, qat.total());
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
    const Sums& s = layers_[i];
    nlohmann::json l = {
        {"tr", s.tr / n}, {"osc", osc_share(s.oscillated, s.changed)}, {"near", s.near / n}};
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
  j["osc"] = osc_share(total_.oscillated, total_.changed);
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
  auto sums = [](const Sums& x) {
    return nlohmann::json{
        {"tr", x.tr}, {"near", x.near}, {"changed", x.changed}, {"oscillated", x.oscillated}};
  };
  nlohmann::json layers = nlohmann::json::array();
  for (const Sums& l : layers_) layers.push_back(sums(l));
  return {{"steps", steps_}, {"total", sums(total_)}, {"layers", layers}};
}

void TransitionWindow::load_state(const nlohmann::json& j) {
  auto sums = [](const nlohmann::json& a) {
    // An array is the sums of an older tranq, which averaged per-step osc shares: its
    // oscillation and transition counts are not known.
    TRANQ_CHECK_AS(FormatError, a.is_object() && a.size() == 4,
                   "checkpoint: bad transition window sums {} (expected tr, near, changed and "
                   "oscillated; a checkpoint taken inside a log window by an older tranq cannot "
                   "be resumed: start the run again)",
                   a.dump());
    return Sums{a.at("tr").get<double>(), a.at("near").get<double>(),
                a.at("changed").get<int64_t>(), a.at("oscillated").get<int64_t>()};
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
