#pragma once
// A tiny SVG line-chart writer, so `tranq plot` needs no plotting dependency. Charts are
// stacked vertically in one standalone document and share one x range, so steps line up.
#include <string>
#include <vector>

namespace tranq::app::svg {

enum class Style { kLine, kDashed, kMarkers };

struct Series {
  std::string label;  // legend text; empty: not in the legend
  std::string color;  // any SVG colour
  Style style = Style::kLine;
  double width = 1.5;
  std::vector<double> x, y;  // non-finite points are skipped
};

struct LineChart {
  std::string id;  // becomes the group's id "panel-<id>"
  std::string title, y_label;
  bool log_y = false;
  // Log axes: values below the floor (zeros) are drawn at the floor instead of at -inf.
  double log_floor = 1e-6;
  std::vector<Series> series;
};

// Colour i of a fixed palette, cycling.
const char* palette(size_t i);

// Escapes the XML special characters and drops control characters that XML cannot hold.
std::string xml_escape(const std::string& s);

// The whole document: a title, then each chart with axes, tick labels, title and legend.
std::string render(const std::string& title, const std::string& x_label,
                   const std::vector<LineChart>& charts, int width = 900);

}  // namespace tranq::app::svg
