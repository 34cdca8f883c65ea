#pragma once
// metrics.jsonl: one JSON object per logged step and per epoch, appended one whole line per
// write (a kill leaves at most a torn last line, which resume drops).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quant/qat_controller.h"

namespace tranq::app {

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const nlohmann::json& j);

 private:
  std::FILE* f_;
};

// Each quantized layer's transition statistics over the steps since the last log line, rendered
// as the `layers` object of a step line (plus the global values). `tr` and `near` are per-weight
// rates: their window value is the mean of the steps' rates (a layer's size is fixed). `osc` is a
// share of transitions, whose number varies from step to step: its window value is the window's
// oscillations over the window's transitions (0 when nothing changed), not a mean of per-step
// shares, which would weigh a quiet step like a busy one.
class TransitionWindow {
 public:
  void add(const quant::QatController& qat);
  // Adds "tr", "tr_ema", "target_tr", "talr", "osc", "near" and "layers" to j, then resets.
  void flush_into(nlohmann::json& j, const quant::QatController& qat, int64_t step);
  // The sums so far, for a checkpoint taken inside a log window (doubles round-trip exactly).
  nlohmann::json state() const;
  void load_state(const nlohmann::json& j);  // FormatError when j is not a state()

 private:
  struct Sums {
    double tr = 0, near = 0;              // sums of the steps' rates
    int64_t changed = 0, oscillated = 0;  // sums of the steps' counts
  };
  std::vector<Sums> layers_;
  Sums total_;
  int64_t steps_ = 0;
};

}  // namespace tranq::app
