// tranq plot: metrics.jsonl -> one standalone SVG.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/plot.h"
#include "apps/svg.h"
#include "core/error.h"

namespace fs = std::filesystem;
using tranq::app::render_run_plot;

namespace {

class PlotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tranq_plot_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write_metrics(const std::string& text) {
    std::ofstream(dir_ / "metrics.jsonl", std::ios::binary) << text;
  }
  std::string run() const { return dir_.string(); }
  fs::path dir_;
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// The text of one panel's group (panels are not nested, so up to the next panel or the end).
std::string panel(const std::string& svg, const std::string& id) {
  const size_t b = svg.find("<g id=\"panel-" + id + "\"");
  if (b == std::string::npos) return "";
  const size_t e = svg.find("<g id=\"panel-", b + 1);
  return svg.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

// The points attributes of the polylines, in document order.
std::vector<std::string> polylines(const std::string& s) {
  std::vector<std::string> out;
  for (size_t p = s.find("<polyline"); p != std::string::npos; p = s.find("<polyline", p + 1)) {
    const size_t b = s.find("points=\"", p) + 8;
    out.push_back(s.substr(b, s.find('"', b) - b));
  }
  return out;
}

// A small XML well-formedness check: tags nest and close, '<' only starts markup, '&' only
// starts one of the five predefined entities.
void expect_well_formed(const std::string& s) {
  ASSERT_EQ(s.rfind("<?xml", 0), 0u);
  ASSERT_NE(s.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(s.find("viewBox=\"0 0 900 "), std::string::npos);
  EXPECT_EQ(s.substr(s.size() - 7), "</svg>\n");
  EXPECT_EQ(count(s, "<g"), count(s, "</g>"));
  std::vector<std::string> stack;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      bool ok = false;
      for (const char* ent : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
        ok |= s.compare(i, strlen(ent), ent) == 0;
      ASSERT_TRUE(ok) << "bare '&' at " << i << ": " << s.substr(i, 20);
    }
    if (s[i] != '<') continue;
    const size_t end = s.find('>', i);
    ASSERT_NE(end, std::string::npos);
    if (s[i + 1] == '?') {
      i = end;
      continue;
    }
    const bool closing = s[i + 1] == '/';
    const size_t name_b = i + (closing ? 2 : 1);
    ASSERT_TRUE(std::isalpha(static_cast<unsigned char>(s[name_b]))) << "raw '<' at " << i;
    const size_t name_e = s.find_first_of(" />", name_b);
    const std::string name = s.substr(name_b, name_e - name_b);
    if (closing) {
      ASSERT_FALSE(stack.empty()) << "unopened </" << name << ">";
      ASSERT_EQ(stack.back(), name);
      stack.pop_back();
    } else if (s[end - 1] != '/') {
      stack.push_back(name);
    }
    i = end;
  }
  EXPECT_TRUE(stack.empty());
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  EXPECT_EQ(lower.find("nan"), std::string::npos);
  EXPECT_EQ(lower.find("inf"), std::string::npos);
}

const char* kFpRun =
    R"({"kind":"step","step":10,"epoch":1,"loss":2.0,"lr":0.1,"train_acc":0.2,"images_per_s":100})"
    "\n"
    R"({"kind":"step","step":20,"epoch":1,"loss":1.5,"lr":0.1,"train_acc":0.4,"images_per_s":100})"
    "\n"
    R"({"kind":"step","step":30,"epoch":1,"loss":1.0,"lr":0.1,"train_acc":0.6,"images_per_s":100})"
    "\n"
    R"({"kind":"epoch","step":30,"epoch":1,"loss":1.4,"lr":0.1,"train_acc":0.4,"test_acc":0.5,"images_per_s":90})"
    "\n";

std::string qat_line(int step, double tr, double talr) {
  // "fc" never flips: a zero that a log axis must clamp, not turn into -inf.
  return fmt::format(
      R"({{"kind":"step","step":{0},"epoch":1,"loss":1.0,"lr":0.01,"train_acc":0.5,"images_per_s":1,)"
      R"("tr":{1},"osc":0.1,"near":0.2,"tr_ema":{1},"target_tr":0.001,"talr":{2},"layers":{{)"
      R"("conv<1>":{{"tr":{1},"osc":0.1,"near":0.2,"tr_ema":{1},"target_tr":0.001,"talr":{2}}},)"
      R"("a&b":{{"tr":0.005,"osc":0.1,"near":0.2,"tr_ema":0.005,"target_tr":0.001,"talr":0.02}},)"
      R"("fc":{{"tr":0,"osc":0,"near":0,"tr_ema":0,"target_tr":0.001,"talr":0.01}}}}}})"
      "\n",
      step, tr, talr);
}

}  // namespace

TEST_F(PlotTest, FullPrecisionRunHasLossAndAccuracyPanelsOnly) {
  write_metrics(kFpRun);
  const std::string svg = render_run_plot(run());
  expect_well_formed(svg);
  EXPECT_NE(panel(svg, "loss"), "");
  EXPECT_NE(panel(svg, "accuracy"), "");
  for (const char* id : {"tr", "layer-tr", "layer-talr", "osc"})
    EXPECT_EQ(panel(svg, id), "") << id;
  // By hand: x axis 0..30 (from the run start) over [72, 690] px (900 wide, 72 left, 210 right);
  // loss axis 1.0..2.0 (ticks of 0.2) over [220, 30] px.
  const auto loss = polylines(panel(svg, "loss"));
  ASSERT_EQ(loss.size(), 1u);
  EXPECT_EQ(loss[0], "278.0,30.0 484.0,125.0 690.0,220.0");
  // The epoch loss 1.4 at step 30 as a marker.
  EXPECT_NE(panel(svg, "loss").find("<circle cx=\"690.0\" cy=\"144.0\""), std::string::npos);
  // Accuracy in percent: train 20..60 (axis 20..60, ticks of 10), test 50 as a marker.
  const std::string acc = panel(svg, "accuracy");
  ASSERT_EQ(polylines(acc).size(), 1u);
  EXPECT_EQ(polylines(acc)[0], "278.0,220.0 484.0,125.0 690.0,30.0");
  EXPECT_NE(acc.find("<circle cx=\"690.0\" cy=\"77.5\""), std::string::npos);
  EXPECT_NE(acc.find(">test, per epoch</text>"), std::string::npos);
  EXPECT_NE(svg.find("test accuracy 50.00% after 30 steps"), std::string::npos);
}

TEST_F(PlotTest, QatRunDrawsTransitionPanelsWithOneLinePerLayer) {
  write_metrics(qat_line(10, 0.002, 0.01) + qat_line(20, 0.0, 0.012) + qat_line(30, 0.001, 0.011));
  const std::string svg = render_run_plot(run());
  expect_well_formed(svg);
  for (const char* id : {"loss", "accuracy", "tr", "layer-tr", "layer-talr", "osc"})
    EXPECT_NE(panel(svg, id), "") << id;

  const std::string ltr = panel(svg, "layer-tr");
  const auto lines = polylines(ltr);
  ASSERT_EQ(lines.size(), 4u);                    // three layers, then the target on top
  EXPECT_EQ(count(ltr, "stroke-dasharray"), 2u);  // the target's line and its legend swatch
  EXPECT_NE(ltr.find(">conv&lt;1&gt;</text>"), std::string::npos);
  EXPECT_NE(ltr.find(">a&amp;b</text>"), std::string::npos);
  EXPECT_EQ(svg.find("conv<1>"), std::string::npos);
  // Log axis in decades from the 1e-6 floor up to 0.01; "fc" (always 0) lies on the floor,
  // the bottom of the plot (30 + 190 px).
  for (const char* tick : {">1e-6<", ">1e-5<", ">0.001<", ">0.01<"})
    EXPECT_NE(ltr.find(tick), std::string::npos) << tick;
  EXPECT_EQ(lines[2], "278.0,220.0 484.0,220.0 690.0,220.0");
  // The target 1e-3 sits 3 of 4 decades up: 220 - 190 * 3/4.
  EXPECT_EQ(lines[3], "278.0,77.5 484.0,77.5 690.0,77.5");

  EXPECT_EQ(polylines(panel(svg, "layer-talr")).size(), 4u);  // three layers and the LR
  EXPECT_EQ(polylines(panel(svg, "tr")).size(), 3u);          // TR, its EMA, the target
  const std::string osc = panel(svg, "osc");
  EXPECT_EQ(polylines(osc).size(), 2u);
  // osc is a share of the transitions, near a share of the weights: the labels say which.
  EXPECT_NE(osc.find(">osc, % of transitions</text>"), std::string::npos) << osc;
  EXPECT_NE(osc.find(">near, % of weights</text>"), std::string::npos) << osc;
  EXPECT_EQ(osc.find("share of weights"), std::string::npos) << osc;
}

TEST_F(PlotTest, TornLastLineIsIgnored) {
  std::string text = kFpRun;
  write_metrics(text + R"({"kind":"step","step":40,"ep)");
  const std::string svg = render_run_plot(run());
  expect_well_formed(svg);
  EXPECT_EQ(polylines(panel(svg, "loss"))[0], "278.0,30.0 484.0,125.0 690.0,220.0");
}

TEST_F(PlotTest, CorruptLineIsAFormatErrorNamingTheLine) {
  std::string text = kFpRun;
  write_metrics(text.substr(0, text.find('\n') + 1) + "{\"kind\":\"step\",oops\n" +
                text.substr(text.find('\n') + 1));
  try {
    render_run_plot(run());
    FAIL() << "expected FormatError";
  } catch (const tranq::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl:2:"), std::string::npos) << e.what();
  }
  // A complete last line (newline-terminated) was not torn: it is an error too, as is valid
  // JSON that is not a metrics object.
  write_metrics(text + "garbage\n");
  EXPECT_THROW(render_run_plot(run()), tranq::FormatError);
  write_metrics(text + "[1,2]\n");
  EXPECT_THROW(render_run_plot(run()), tranq::FormatError);
}

TEST_F(PlotTest, MissingFileIsAnIoError) {
  EXPECT_THROW(render_run_plot(run()), tranq::IoError);
  EXPECT_THROW(render_run_plot((dir_ / "nope").string()), tranq::IoError);
}

TEST_F(PlotTest, WriteRunPlotWritesTheDocument) {
  write_metrics(kFpRun);
  const fs::path out = dir_ / "curves.svg";
  tranq::app::write_run_plot(run(), out.string());
  std::ifstream f(out, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, render_run_plot(run()));
  EXPECT_THROW(tranq::app::write_run_plot(run(), (dir_ / "no" / "such.svg").string()),
               tranq::IoError);
}

TEST(Svg, EscapesMarkupAndDropsControlCharacters) {
  EXPECT_EQ(tranq::app::svg::xml_escape("a<b>&\"c'\x01\td"), "a&lt;b&gt;&amp;&quot;c&apos;\td");
}

TEST(Svg, EmptyRunStillRendersAValidDocument) {
  tranq::app::svg::LineChart empty;
  empty.id = "x";
  const std::string s = tranq::app::svg::render("t", "step", {empty});
  expect_well_formed(s);
  EXPECT_NE(s.find("id=\"panel-x\""), std::string::npos);
}
