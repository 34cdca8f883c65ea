#include "apps/plot.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "apps/run_files.h"
#include "apps/svg.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace tranq::app {

namespace {

// Keeps the layers in the order of the file, which is the order the trainer wrote them.
using Json = nlohmann::ordered_json;

struct Curve {
  std::vector<double> x, y;
  void add(double step, const Json& obj, const char* key, double scale = 1) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number()) return;  // absent, or NaN written as null
    x.push_back(step);
    y.push_back(it->get<double>() * scale);
  }
};

struct RunMetrics {
  std::map<std::string, Curve> step, epoch;  // by JSON key
  std::vector<std::string> layer_names;      // order of first appearance
  std::map<std::string, Curve> layer_tr, layer_talr;
};

RunMetrics read_metrics(const std::string& path) {
  const std::string text = read_file(path);
  RunMetrics m;
  size_t line_no = 0;
  for (size_t b = 0; b < text.size();) {
    size_t e = text.find('\n', b);
    const bool torn = e == std::string::npos;
    if (torn) e = text.size();
    const std::string line = text.substr(b, e - b);
    b = e + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() && torn) break;  // a write cut short by a kill; resume drops it too
    if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string() || !j.contains("step") ||
        !j["step"].is_number())
      TRANQ_THROW(FormatError,
                  "{}:{}: not a metrics line (expected a JSON object with \"kind\" and \"step\"); "
                  "repair or delete that line",
                  path, line_no);
    const double x = j["step"].get<double>();
    const std::string kind = j["kind"].get<std::string>();
    if (kind == "epoch") {
      m.epoch["loss"].add(x, j, "loss");
      m.epoch["train_acc"].add(x, j, "train_acc", 100);
      m.epoch["test_acc"].add(x, j, "test_acc", 100);
    } else if (kind == "step") {
      for (const char* k : {"loss", "lr", "tr", "tr_ema", "target_tr", "talr"})
        m.step[k].add(x, j, k);
      for (const char* k : {"train_acc", "osc", "near"}) m.step[k].add(x, j, k, 100);
      auto layers = j.find("layers");
      if (layers == j.end() || !layers->is_object()) continue;
      for (const auto& [name, l] : layers->items()) {
        if (!l.is_object()) continue;
        if (!m.layer_tr.count(name)) m.layer_names.push_back(name);
        m.layer_tr[name].add(x, l, "tr");
        m.layer_talr[name].add(x, l, "talr");
      }
    }  // other kinds: written by a newer tranq, nothing to draw
  }
  return m;
}

svg::Series series(const std::string& label, const Curve& c, const char* color,
                   svg::Style style = svg::Style::kLine, double width = 1.5) {
  svg::Series s;
  s.label = label;
  s.color = color;
  s.style = style;
  s.width = width;
  s.x = c.x;
  s.y = c.y;
  return s;
}

svg::LineChart chart(const char* id, const char* title, const char* y_label, bool log_y = false) {
  svg::LineChart c;
  c.id = id;
  c.title = title;
  c.y_label = y_label;
  c.log_y = log_y;
  return c;
}

bool has_data(const svg::LineChart& c) {
  return std::any_of(c.series.begin(), c.series.end(), [](const auto& s) { return !s.x.empty(); });
}

// The smallest and largest positive values of the chart (mn > mx when there are none).
std::pair<double, double> positive_range(const svg::LineChart& c) {
  double mn = HUGE_VAL, mx = 0;
  for (const auto& s : c.series)
    for (double v : s.y)
      if (v > 0 && std::isfinite(v)) mn = std::min(mn, v), mx = std::max(mx, v);
  return {mn, mx};
}

std::vector<svg::LineChart> make_charts(RunMetrics& m) {
  using svg::Style;
  const Curve& target = m.step["target_tr"];
  std::vector<svg::LineChart> out;

  svg::LineChart loss = chart("loss", "Training loss", "cross-entropy");
  loss.series = {series("per step (window mean)", m.step["loss"], svg::palette(0)),
                 series("per epoch", m.epoch["loss"], svg::palette(1), Style::kMarkers)};
  out.push_back(loss);

  svg::LineChart acc = chart("accuracy", "Accuracy", "accuracy (%)");
  acc.series = {series("train, per step (window)", m.step["train_acc"], svg::palette(0)),
                series("train, per epoch", m.epoch["train_acc"], svg::palette(1), Style::kMarkers),
                series("test, per epoch", m.epoch["test_acc"], svg::palette(2), Style::kMarkers)};
  out.push_back(acc);

  svg::LineChart tr =
      chart("tr", "Transition rate (all quantized weights)", "transition rate", true);
  tr.series = {series("TR (window mean)", m.step["tr"], svg::palette(0)),
               series("TR EMA (TRS)", m.step["tr_ema"], svg::palette(1)),
               series("target TR", target, "black", Style::kDashed)};
  if (has_data(tr)) out.push_back(tr);

  svg::LineChart ltr = chart("layer-tr", "Transition rate per layer", "transition rate", true);
  for (size_t i = 0; i < m.layer_names.size(); ++i)
    ltr.series.push_back(
        series(m.layer_names[i], m.layer_tr[m.layer_names[i]], svg::palette(i), Style::kLine, 1));
  if (has_data(ltr)) {
    ltr.series.push_back(series("target TR", target, "black", Style::kDashed));  // drawn on top
    out.push_back(ltr);
  }

  svg::LineChart talr = chart(
      "layer-talr", "Transition-adaptive LR per layer (TRS) vs. scheduled LR", "learning rate");
  for (size_t i = 0; i < m.layer_names.size(); ++i)
    talr.series.push_back(
        series(m.layer_names[i], m.layer_talr[m.layer_names[i]], svg::palette(i), Style::kLine, 1));
  if (has_data(talr)) {
    // Log scale only when the TALRs spread over decades; the floor keeps a cosine LR's final
    // zero from stretching the axis over decades that hold no TALR.
    const auto [mn, mx] = positive_range(talr);
    talr.log_y = mx > 0 && mx / mn >= 30;
    if (talr.log_y) talr.log_floor = mn / 10;
    talr.series.push_back(series("LR (schedule)", m.step["lr"], "black", Style::kLine, 2));
    out.push_back(talr);
  }

  // Two different shares on one percent axis: `osc` is a share of the transitions (those that
  // returned a weight to its previous code), `near` a share of the weights.
  svg::LineChart osc =
      chart("osc", "Oscillating transitions and near-boundary weights", "share (%)");
  osc.series = {series("osc, % of transitions", m.step["osc"], svg::palette(3)),
                series("near, % of weights", m.step["near"], svg::palette(4))};
  if (has_data(osc)) out.push_back(osc);
  return out;
}

}  // namespace

std::string render_run_plot(const std::string& run_dir) {
  RunMetrics m = read_metrics(metrics_path(run_dir));
  std::string title = "tranq run " + run_dir;
  const Curve& test = m.epoch["test_acc"];
  if (!test.y.empty())
    title +=
        fmt::format(" \u2014 test accuracy {:.2f}% after {} steps", test.y.back(), test.x.back());
  return svg::render(title, "step", make_charts(m));
}

void write_run_plot(const std::string& run_dir, const std::string& out_svg) {
  write_file_atomic(out_svg, render_run_plot(run_dir));
}

}  // namespace tranq::app
