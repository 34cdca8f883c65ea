// QatController over SGD on a quantized resnet20: codes at initialise(), transition counts
// after a real optimizer step checked against codes compared in the test, oscillations when
// the weights return, near counts against a scalar reference, size-weighted totals, the metrics
// window over them (apps/metrics.h) and, with a TrsController, the TALR it puts into each
// layer's param group and the updates it feeds back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "apps/metrics.h"
#include "core/autograd.h"
#include "core/error.h"
#include "gradcheck.h"
#include "models/registry.h"
#include "optim/optimizer.h"
#include "optim/trs.h"
#include "quant/fake_quantize.h"
#include "quant/qat_controller.h"
#include "quant/transform.h"

using namespace tranq;
using kernels::QuantRange;
using quant::QatController;
using quant::QuantizedLayer;

namespace {

using Layers = std::vector<std::pair<std::string, QuantizedLayer*>>;

// Distance (in steps) from t to the nearest transition point, by brute force over the points.
double ref_transition_distance(double t, const QuantRange& r) {
  if (r.binary_sign) return std::fabs(t);
  double best = INFINITY;
  for (int k = r.lo; k < r.hi; ++k) best = std::min(best, std::fabs(t - (k + 0.5)));
  return best;
}

int64_t ref_near_count(const QuantizedLayer& q) {
  auto w = q.weight().contiguous().to_vector<float>();
  auto s = q.weight_scale().contiguous().to_vector<float>();
  const QuantRange r = q.weight_range();
  const size_t per = w.size() / s.size();
  int64_t n = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const float t = w[i] * (r.g / std::fabs(s[i / per]));
    n += ref_transition_distance(t, r) < 0.1;
  }
  return n;
}

std::vector<int8_t> codes_of(const Tensor& t) {
  return t.contiguous().to_vector<int8_t>();
}

int64_t count_diff(const std::vector<int8_t>& a, const std::vector<int8_t>& b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

// A quantized resnet20 (W2A2, frozen weight scales as under TRS unless told otherwise) with
// calibrated activation scales, and an SGD whose groups are: the rest first, then one group per
// quantized weight in REVERSE layer order, so a controller that confused layer and group
// indices would be caught.
struct Rig {
  std::shared_ptr<Module> model;
  Layers layers;
  std::vector<size_t> groups;
  std::unique_ptr<optim::Optimizer> opt;
  Tensor x, proj;

  explicit Rig(bool learn_weight_scale = false, int weight_bits = 2) {
    model = create_model("resnet20", 1, 10, 17);
    quant::QuantizeOptions o;
    o.spec.weight_bits = weight_bits;
    o.spec.act_bits = 2;
    o.spec.learn_weight_scale = learn_weight_scale;
    quant::quantize_model(*model, o);
    layers = quant::quantized_layers(*model);
    x = test::random_tensor({4, 1, 8, 8}, 18, -1, 1, DType::f32);
    quant::calibrate_activation_scales(*model, x);

    std::vector<optim::ParamGroup> gs(1 + layers.size());
    std::set<const TensorImpl*> layer_weights;
    groups.resize(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      const size_t gi = layers.size() - i;
      groups[i] = gi;
      gs[gi].names = {layers[i].first + ".weight"};
      gs[gi].params = {layers[i].second->weight()};
      gs[gi].lr = 0.2;  // big, so that many codes change in one step
      layer_weights.insert(layers[i].second->weight().impl());
    }
    gs[0].lr = 0.01;
    for (auto& [n, p] : model->named_parameters()) {
      if (layer_weights.count(p.impl())) continue;
      gs[0].names.push_back(n);
      gs[0].params.push_back(p);
    }
    opt = optim::make_sgd(std::move(gs));
    Tensor y = (*model)(x);
    proj = test::random_tensor(y.shape(), 19, -1, 1, DType::f32);
  }

  void backward() {
    opt->zero_grad();
    ops::sum(ops::mul((*model)(x), proj)).backward();
  }

  std::vector<std::vector<int8_t>> fresh_codes() const {
    std::vector<std::vector<int8_t>> out;
    for (auto& [n, q] : layers) out.push_back(codes_of(q->compute_codes()));
    return out;
  }
  std::vector<Tensor> weights_copy() const {
    std::vector<Tensor> out;
    for (auto& [n, q] : layers) out.push_back(q->weight().clone());
    return out;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& [n, q] : layers) out.push_back(n);
    return out;
  }
};

TEST(QatController, InitialiseTakesTheForwardCodes) {
  Rig rig;
  QatController qc(rig.layers, rig.groups, nullptr);
  qc.initialise();
  ASSERT_EQ(qc.last().size(), rig.layers.size());
  for (size_t i = 0; i < rig.layers.size(); ++i) {
    QuantizedLayer* q = rig.layers[i].second;
    // The codes of the fake quantizer in the forward pass.
    Tensor fq = Tensor::zeros(q->weight().shape(), DType::i8);
    {
      NoGradGuard ng;
      quant::fake_quantize(q->weight(), q->weight_scale(), q->weight_range(), false, fq);
    }
    EXPECT_EQ(codes_of(q->codes()), codes_of(fq)) << rig.layers[i].first;
    EXPECT_EQ(codes_of(q->codes()), codes_of(q->compute_codes())) << rig.layers[i].first;
    EXPECT_EQ(codes_of(q->prev_codes()), codes_of(q->codes())) << rig.layers[i].first;
    const auto& l = qc.last()[i];
    EXPECT_EQ(l.name, rig.layers[i].first);
    EXPECT_EQ(l.counts.numel, q->weight().numel());
    EXPECT_EQ(l.counts.changed, 0);
    EXPECT_EQ(l.tr, 0.0);
    EXPECT_EQ(l.counts.near, ref_near_count(*q)) << rig.layers[i].first;
  }
  // Not all codes are zero, so the comparison is not against the construction zeros.
  auto c = codes_of(rig.layers[3].second->codes());
  EXPECT_TRUE(std::any_of(c.begin(), c.end(), [](int8_t v) { return v != 0; }));
}

TEST(QatController, CountsTransitionsOfAnSgdStep) {
  Rig rig;
  QatController qc(rig.layers, rig.groups, nullptr);
  qc.initialise();
  const auto before = rig.fresh_codes();
  const auto w_before = rig.weights_copy();

  rig.backward();
  qc.before_step(*rig.opt);  // no TRS: leaves the lrs alone
  for (size_t i = 0; i < rig.layers.size(); ++i)
    EXPECT_EQ(rig.opt->param_groups()[rig.groups[i]].lr, 0.2);
  rig.opt->step();
  qc.after_step(0);
  const auto after = rig.fresh_codes();

  int64_t changed_total = 0, numel_total = 0, layers_with_changes = 0;
  double mean_tr = 0;
  for (size_t i = 0; i < rig.layers.size(); ++i) {
    const auto& l = qc.last()[i];
    const int64_t changed = count_diff(before[i], after[i]);
    const int64_t n = static_cast<int64_t>(before[i].size());
    EXPECT_EQ(l.counts.numel, n);
    EXPECT_EQ(l.counts.changed, changed) << l.name;
    EXPECT_EQ(l.tr, static_cast<double>(changed) / static_cast<double>(n)) << l.name;
    EXPECT_EQ(l.counts.oscillated, 0) << l.name;  // nothing to go back to yet
    EXPECT_EQ(l.counts.near, ref_near_count(*rig.layers[i].second)) << l.name;
    EXPECT_EQ(codes_of(rig.layers[i].second->codes()), after[i]) << l.name;
    EXPECT_EQ(codes_of(rig.layers[i].second->prev_codes()), before[i])
        << l.name;  // all changed ones
    changed_total += changed;
    numel_total += n;
    layers_with_changes += changed > 0;
    mean_tr += l.tr / static_cast<double>(rig.layers.size());
  }
  // The step was big enough to make this meaningful, not so big that everything moved.
  EXPECT_GE(layers_with_changes, 10);
  EXPECT_LT(changed_total, numel_total / 2);

  // total(): weighted by layer size, i.e. not the mean of the layer rates.
  const auto tot = qc.total();
  EXPECT_EQ(tot.counts.numel, numel_total);
  EXPECT_EQ(tot.counts.changed, changed_total);
  EXPECT_EQ(tot.tr, static_cast<double>(changed_total) / static_cast<double>(numel_total));
  EXPECT_GT(std::fabs(tot.tr - mean_tr), 1e-6 * tot.tr);

  // Put the latent weights back: every transition is undone, i.e. oscillates.
  for (size_t i = 0; i < rig.layers.size(); ++i) rig.layers[i].second->weight().copy_(w_before[i]);
  std::vector<int64_t> changed_first;
  for (const auto& l : qc.last()) changed_first.push_back(l.counts.changed);
  qc.after_step(1);
  for (size_t i = 0; i < rig.layers.size(); ++i) {
    const auto& l = qc.last()[i];
    EXPECT_EQ(l.counts.changed, changed_first[i]) << l.name;
    EXPECT_EQ(l.counts.oscillated, changed_first[i]) << l.name;
    EXPECT_EQ(l.osc, changed_first[i] ? 1.0 : 0.0) << l.name;
    EXPECT_EQ(codes_of(rig.layers[i].second->codes()), before[i]) << l.name;
  }
  EXPECT_EQ(qc.total().counts.oscillated, changed_total);
  EXPECT_EQ(qc.total().osc, 1.0);
  // Without TRS there is no controller state.
  EXPECT_TRUE(qc.state_tensors().empty());
  EXPECT_EQ(qc.trs(), nullptr);
}

// The metrics window over 10 steps: one where every transition of the step before is undone
// (all of them oscillate), then 9 where no code changes. `osc` is the window's oscillations over
// its transitions, 1, not the mean of the per-step shares (1 then nine 0s: 0.1); `tr` and `near`
// are the means of the steps' rates. The device path's counts give the same line, and so does a
// window saved and restored (a checkpoint) in the middle.
struct WindowRun {
  nlohmann::json line;
  std::vector<std::vector<quant::LayerTransitions>> steps;  // host path: last() after each step
  std::vector<quant::LayerTransitions> totals;
};

WindowRun run_window(bool device_path, int restore_after) {
  Rig rig;
  QatController qc(rig.layers, rig.groups, nullptr);
  qc.set_force_device_path(device_path);
  qc.initialise();
  const auto w_before = rig.weights_copy();
  rig.backward();
  rig.opt->step();
  qc.after_step(0);  // before the window (the previous log line's)
  qc.sync_for_logging();
  app::TransitionWindow window;
  WindowRun out;
  auto add = [&](const QatController& q) {
    window.add(q);
    out.steps.push_back(q.last());
    out.totals.push_back(q.total());
  };
  for (size_t i = 0; i < rig.layers.size(); ++i) rig.layers[i].second->weight().copy_(w_before[i]);
  for (int s = 1; s <= 10; ++s) {
    qc.after_step(s);
    if (!qc.deferred()) add(qc);
    if (s == restore_after) {
      qc.sync_for_logging(add);
      const std::string saved = window.state().dump();
      window = app::TransitionWindow();
      window.load_state(nlohmann::json::parse(saved));
    }
  }
  qc.sync_for_logging(add);
  window.flush_into(out.line, qc, 11);
  return out;
}

TEST(QatController, MetricsWindowOscIsOscillationsOverTransitions) {
  const WindowRun r = run_window(/*device_path=*/false, /*restore_after=*/-1);
  ASSERT_EQ(r.steps.size(), 10u);
  const auto& first = r.steps[0];
  int64_t changed_total = 0;
  int layers_with_changes = 0;
  for (size_t i = 0; i < first.size(); ++i) {
    const std::string& name = first[i].name;
    ASSERT_EQ(first[i].counts.oscillated, first[i].counts.changed) << name;
    double tr = 0, near = 0;
    for (size_t s = 0; s < r.steps.size(); ++s) {
      if (s > 0) {
        ASSERT_EQ(r.steps[s][i].counts.changed, 0) << name;
      }
      tr += r.steps[s][i].tr;
      near += r.steps[s][i].near;
    }
    const nlohmann::json& l = r.line.at("layers").at(name);
    EXPECT_EQ(l.at("osc").get<double>(), first[i].counts.changed > 0 ? 1.0 : 0.0) << name;
    EXPECT_EQ(l.at("tr").get<double>(), tr / 10) << name;
    EXPECT_EQ(l.at("near").get<double>(), near / 10) << name;
    changed_total += first[i].counts.changed;
    layers_with_changes += first[i].counts.changed > 0;
  }
  ASSERT_GE(layers_with_changes, 10);
  ASSERT_GT(changed_total, 0);
  EXPECT_EQ(r.line.at("osc").get<double>(), 1.0);
  double tr = 0, near = 0;
  for (const auto& t : r.totals) tr += t.tr, near += t.near;
  EXPECT_EQ(r.line.at("tr").get<double>(), tr / 10);
  EXPECT_EQ(r.line.at("near").get<double>(), near / 10);

  EXPECT_EQ(run_window(/*device_path=*/true, -1).line, r.line);
  EXPECT_EQ(run_window(/*device_path=*/false, /*restore_after=*/4).line, r.line);
  EXPECT_EQ(run_window(/*device_path=*/true, /*restore_after=*/1).line, r.line);
}

TEST(QatController, MetricsWindowRefusesTheOlderStateOfPerStepShares) {
  // [tr, osc, near] sums: the window's transition and oscillation counts are not in it.
  const nlohmann::json old = {
      {"steps", 2}, {"total", {0.1, 0.5, 0.2}}, {"layers", {{0.1, 0.5, 0.2}}}};
  app::TransitionWindow w;
  EXPECT_THROW(w.load_state(old), FormatError);
}

TEST(QatController, LearnableScalesCountAgainstTheUpdatedScale) {
  Rig rig(/*learn_weight_scale=*/true);
  QatController qc(rig.layers, rig.groups, nullptr);
  qc.initialise();
  const auto before = rig.fresh_codes();
  std::vector<Tensor> s_before;
  for (auto& [n, q] : rig.layers) s_before.push_back(q->weight_scale().clone());
  rig.backward();
  rig.opt->step();
  qc.after_step(0);
  const auto after = rig.fresh_codes();  // with the stepped scales
  bool scale_moved = false;
  for (size_t i = 0; i < rig.layers.size(); ++i) {
    EXPECT_EQ(qc.last()[i].counts.changed, count_diff(before[i], after[i])) << qc.last()[i].name;
    scale_moved |= rig.layers[i].second->weight_scale().item() != s_before[i].item();
  }
  EXPECT_TRUE(scale_moved);
}

std::unique_ptr<optim::TrsController> make_trs(const std::vector<std::string>& names,
                                               optim::TalrRule rule) {
  optim::TrsOptions o;
  o.target_tr = 0.02;
  o.schedule.name = "cosine";
  o.schedule.total_steps = 10;
  o.rule = rule;
  o.talr_init = 0.3;
  o.talr_gain = 0.7;
  o.momentum = 0.99;
  return std::make_unique<optim::TrsController>(o, names);
}

class QatControllerTrs : public ::testing::TestWithParam<optim::TalrRule> {};

TEST_P(QatControllerTrs, SetsTalrAndFeedsTheController) {
  const optim::TalrRule rule = GetParam();
  Rig rig;
  QatController qc(rig.layers, rig.groups, make_trs(rig.names(), rule));
  const optim::TrsController& trs = *qc.trs();
  qc.initialise();
  EXPECT_EQ(trs.updates(), 0);

  rig.opt->param_groups()[0].lr = 0.05;
  for (size_t i = 0; i < rig.layers.size(); ++i) rig.opt->param_groups()[rig.groups[i]].lr = 0.123;
  qc.before_step(*rig.opt);
  for (size_t i = 0; i < rig.layers.size(); ++i)
    EXPECT_EQ(rig.opt->param_groups()[rig.groups[i]].lr, 0.3);
  EXPECT_EQ(rig.opt->param_groups()[0].lr, 0.05);  // the rest keep their schedule

  // The steps passed on: R_t at step 5 of a cosine over 10 is R_0 / 2.
  const int64_t step = 5;
  const double r = trs.target(step);
  EXPECT_NEAR(r, 0.01, 1e-12);
  rig.backward();
  // A big lr for the first step so that the rates are large and differ between layers.
  for (size_t i = 0; i < rig.layers.size(); ++i) rig.opt->param_groups()[rig.groups[i]].lr = 0.2;
  rig.opt->step();
  qc.after_step(step);
  EXPECT_EQ(trs.updates(), 1);

  const double m = 0.99;
  std::set<double> talrs;
  for (size_t i = 0; i < rig.layers.size(); ++i) {
    const double k = qc.last()[i].tr;
    EXPECT_EQ(trs.last_rate(i), k);
    const double K = m * 0.02 + (1 - m) * k;
    EXPECT_DOUBLE_EQ(trs.ema(i), K) << rig.layers[i].first;
    const double U = rule == optim::TalrRule::additive ? std::max(0.0, 0.3 + 0.7 * (r - K))
                                                       : 0.3 * (m + (1 - m) * r / (K + 1e-8));
    EXPECT_DOUBLE_EQ(trs.talr(i), U) << rig.layers[i].first;
    talrs.insert(trs.talr(i));
  }
  ASSERT_GE(talrs.size(), 3u);  // distinct per layer, so a group mix-up would show below

  qc.before_step(*rig.opt);
  for (size_t i = 0; i < rig.layers.size(); ++i)
    EXPECT_EQ(rig.opt->param_groups()[rig.groups[i]].lr, trs.talr(i)) << rig.layers[i].first;
  EXPECT_EQ(rig.opt->param_groups()[0].lr, 0.05);

  // Controller state round trip through the QAT controller.
  const NamedTensors st = qc.state_tensors();
  ASSERT_EQ(st.size(), 5u);
  EXPECT_EQ(st[0].first, "trs.K");
  QatController other(rig.layers, rig.groups, make_trs(rig.names(), rule));
  other.load_state(st);
  EXPECT_EQ(other.trs()->updates(), 1);
  for (size_t i = 0; i < rig.layers.size(); ++i) EXPECT_EQ(other.trs()->talr(i), trs.talr(i));
}

INSTANTIATE_TEST_SUITE_P(Rules, QatControllerTrs,
                         ::testing::Values(optim::TalrRule::multiplicative,
                                           optim::TalrRule::additive),
                         [](const auto& info) {
                           return std::string(optim::talr_rule_name(info.param));
                         });

TEST(QatController, BinaryWeights) {
  Rig rig(false, /*weight_bits=*/1);
  QatController qc(rig.layers, rig.groups, nullptr);
  qc.initialise();
  const auto before = rig.fresh_codes();
  for (const auto& c : before)
    for (int8_t v : c) ASSERT_TRUE(v == 1 || v == -1);
  rig.backward();
  rig.opt->step();
  qc.after_step(0);
  const auto after = rig.fresh_codes();
  int64_t total = 0;
  for (size_t i = 0; i < rig.layers.size(); ++i) {
    EXPECT_EQ(qc.last()[i].counts.changed, count_diff(before[i], after[i]));
    EXPECT_EQ(qc.last()[i].counts.near, ref_near_count(*rig.layers[i].second));
    total += qc.last()[i].counts.changed;
  }
  EXPECT_GT(total, 0);
}

TEST(QatController, RejectsMismatchedGroupsAndControllers) {
  Rig rig;
  std::vector<size_t> short_groups(rig.groups.begin(), rig.groups.end() - 1);
  EXPECT_THROW(QatController(rig.layers, short_groups, nullptr), ValueError);
  auto names = rig.names();
  names.pop_back();
  EXPECT_THROW(
      QatController(rig.layers, rig.groups, make_trs(names, optim::TalrRule::multiplicative)),
      ValueError);
}

}  // namespace
