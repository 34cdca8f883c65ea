#include "apps/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace tranq::app::svg {

namespace {

// Panel layout in px: the legend sits in the right margin so it never hides data.
constexpr double kLeft = 72, kRight = 210, kTop = 30, kBottom = 42, kMinPlotH = 190;
constexpr double kLegendRow = 14, kHeader = 40;
constexpr size_t kLegendChars = 28;

struct Axis {
  double lo = 0, hi = 1, floor = 0;
  bool log = false;
  std::vector<double> ticks;
  // 0 at lo, 1 at hi.
  double frac(double v) const {
    if (log)
      return (std::log10(std::max(v, floor)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }
  std::string label(double v) const {
    if (!log) return fmt::format("{:g}", v);
    const int e = static_cast<int>(std::lround(std::log10(v)));
    return e >= -3 && e <= 3 ? fmt::format("{:g}", v) : fmt::format("1e{}", e);
  }
};

double nice_step(double raw) {
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

Axis linear_axis(double mn, double mx) {
  if (!(mn <= mx)) mn = 0, mx = 1;  // no data
  if (mx - mn <= 1e-12 * std::max(1.0, std::abs(mx))) {
    const double d = mn == 0 ? 1 : std::abs(mn) * 0.1;
    mn -= d, mx += d;
  }
  Axis a;
  const double step = nice_step((mx - mn) / 5);
  const double first = std::floor(mn / step), last = std::ceil(mx / step);
  a.lo = first * step;
  a.hi = last * step;
  for (double i = first; i <= last; ++i) a.ticks.push_back(std::abs(i) < 0.5 ? 0.0 : i * step);
  return a;
}

// Whole decades that cover the data, at most ~7 labelled.
Axis log_axis(double mn, double mx, double floor) {
  if (!(mn <= mx)) mn = floor, mx = floor * 10;
  Axis a;
  a.log = true;
  a.floor = floor;
  int lo = static_cast<int>(std::floor(std::log10(mn) + 1e-9));
  int hi = static_cast<int>(std::ceil(std::log10(mx) - 1e-9));
  if (hi <= lo) hi = lo + 1;
  const int stride = (hi - lo + 6) / 7;
  hi = lo + stride * ((hi - lo + stride - 1) / stride);
  a.lo = std::pow(10.0, lo);
  a.hi = std::pow(10.0, hi);
  for (int e = lo; e <= hi; e += stride) a.ticks.push_back(std::pow(10.0, e));
  return a;
}

template <class F>
void for_points(const LineChart& c, F f) {
  for (const auto& s : c.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) f(s.x[i], s.y[i]);
}

Axis y_axis(const LineChart& c) {
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  for_points(c, [&](double, double y) {
    if (c.log_y) y = std::max(y, c.log_floor);
    mn = std::min(mn, y), mx = std::max(mx, y);
  });
  return c.log_y ? log_axis(mn, mx, c.log_floor) : linear_axis(mn, mx);
}

// Cuts at a UTF-8 character boundary so the escaped text stays valid.
std::string shorten(const std::string& s) {
  if (s.size() <= kLegendChars) return s;
  size_t n = kLegendChars - 1;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "\u2026";
}

const char* dash(Style s) {
  return s == Style::kDashed ? " stroke-dasharray=\"6 4\"" : "";
}

std::string render_chart(const LineChart& c, const Axis& xa, const std::string& x_label, double y0,
                         int width, double& height) {
  std::vector<const Series*> legend;
  for (const auto& s : c.series)
    if (!s.label.empty() && !s.x.empty()) legend.push_back(&s);
  const double pw = width - kLeft - kRight;
  const double ph = std::max(kMinPlotH, legend.size() * kLegendRow + 8);
  height = kTop + ph + kBottom;
  const Axis ya = y_axis(c);
  auto px = [&](double x) { return kLeft + xa.frac(x) * pw; };
  auto py = [&](double y) { return kTop + (1 - ya.frac(y)) * ph; };

  std::string o =
      fmt::format("<g id=\"panel-{}\" transform=\"translate(0,{:.0f})\">\n", xml_escape(c.id), y0);
  o += fmt::format("<text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
                   kLeft, xml_escape(c.title));
  o += "<g stroke=\"#e3e3e3\">\n";
  for (double t : ya.ticks)
    o += fmt::format("<line x1=\"{}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>\n", kLeft,
                     kLeft + pw, py(t), py(t));
  for (double t : xa.ticks)
    o += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{}\" y2=\"{:.1f}\"/>\n", px(t), px(t),
                     kTop, kTop + ph);
  o += "</g>\n<g font-size=\"10\" fill=\"#444\">\n";
  for (double t : ya.ticks)
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", kLeft - 5,
                     py(t) + 3.5, xml_escape(ya.label(t)));
  for (double t : xa.ticks)
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(t),
                     kTop + ph + 14, xml_escape(xa.label(t)));
  o += "</g>\n";
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                   kLeft + pw / 2, kTop + ph + 32, xml_escape(x_label));
  o += fmt::format(
      "<text transform=\"translate(16,{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
      kTop + ph / 2, xml_escape(c.y_label));
  o += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
      "stroke=\"#888\"/>\n",
      kLeft, kTop, pw, ph);

  for (const auto& s : c.series) {
    std::vector<std::pair<double, double>> p;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) p.emplace_back(px(s.x[i]), py(s.y[i]));
    if (s.style != Style::kMarkers && p.size() >= 2) {
      std::string pts;
      for (const auto& [x, y] : p)
        pts += fmt::format("{}{:.1f},{:.1f}", pts.empty() ? "" : " ", x, y);
      o += fmt::format(
          "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\"{} "
          "points=\"{}\"/>\n",
          s.color, s.width, dash(s.style), pts);
    } else if (!p.empty()) {  // markers, or a line of a single point
      o += fmt::format("<g fill=\"{}\">\n", s.color);
      for (const auto& [x, y] : p)
        o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\"/>\n", x, y);
      o += "</g>\n";
    }
  }

  o += fmt::format("<g font-size=\"11\" transform=\"translate({:.1f},{})\">\n", kLeft + pw + 12,
                   kTop);
  for (size_t i = 0; i < legend.size(); ++i) {
    const Series& s = *legend[i];
    const double y = i * kLegendRow + 7;
    if (s.style == Style::kMarkers)
      o += fmt::format("<circle cx=\"9\" cy=\"{}\" r=\"3\" fill=\"{}\"/>\n", y, s.color);
    else
      o += fmt::format(
          "<line x1=\"0\" x2=\"18\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n", y,
          y, s.color, std::max(1.5, s.width), dash(s.style));
    o += fmt::format("<text x=\"24\" y=\"{}\">{}</text>\n", y + 4, xml_escape(shorten(s.label)));
  }
  o += "</g>\n</g>\n";
  return o;
}

}  // namespace

const char* palette(size_t i) {
  static const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                        "#393b79", "#ad494a", "#637939", "#843c39"};
  return kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(ch) >= 0x20 || ch == '\t' || ch == '\n') o += ch;
    }
  }
  return o;
}

std::string render(const std::string& title, const std::string& x_label,
                   const std::vector<LineChart>& charts, int width) {
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  for (const auto& c : charts)
    for_points(c, [&](double x, double) { mn = std::min(mn, x), mx = std::max(mx, x); });
  const Axis xa = linear_axis(std::min(mn, 0.0), mx);  // x is the step: show the run from its start
  std::string body;
  double y = kHeader;
  for (const auto& c : charts) {
    double h = 0;
    body += render_chart(c, xa, x_label, y, width, h);
    y += h;
  }
  const double height = y + 8;
  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1:.0f}\" viewBox=\"0 0 "
      "{0} "
      "{1:.0f}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\">\n",
      width, height);
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += fmt::format("<text x=\"{}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
                   kLeft, xml_escape(title));
  o += body;
  return o + "</svg>\n";
}

}  // namespace tranq::app::svg
