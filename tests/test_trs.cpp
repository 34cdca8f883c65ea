#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "optim/trs.h"

using namespace tranq;
using namespace tranq::optim;

namespace {

// R_0 = 0.01 held constant, U_0 = 1e-3.
TrsOptions constant_opts(TalrRule rule, double m) {
  TrsOptions o;
  o.target_tr = 0.01;
  o.schedule.name = "constant";
  o.rule = rule;
  o.talr_init = 1e-3;
  o.momentum = m;
  return o;
}

void expect_rel(double got, double want, const char* what, int step) {
  EXPECT_NEAR(got, want, 1e-14 * std::max(1.0, std::abs(want))) << what << " after step " << step;
}

}  // namespace

TEST(Trs, ParseRule) {
  EXPECT_EQ(parse_talr_rule("multiplicative"), TalrRule::multiplicative);
  EXPECT_EQ(parse_talr_rule("additive"), TalrRule::additive);
  try {
    parse_talr_rule("mul");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("multiplicative"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("additive"), std::string::npos);
  }
}

TEST(Trs, InitialState) {
  TrsController c(constant_opts(TalrRule::multiplicative, 0.99), {"a", "b"});
  ASSERT_EQ(c.num_layers(), 2u);
  EXPECT_EQ(c.layer_names()[1], "b");
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(c.ema(i), 0.01) << "K_0 = R_0";
    EXPECT_EQ(c.talr(i), 1e-3) << "U_0 = talr_init";
    EXPECT_EQ(c.last_rate(i), 0.0);
  }
  EXPECT_THROW(c.talr(2), ValueError);
}

// Hand computation, m = 0.5, R = 0.01, k = 0.02, 0, 0.01:
//  K: 0.5*0.01 + 0.5*0.02 = 0.015;  0.5*0.015 = 0.0075;  0.5*0.0075 + 0.5*0.01 = 0.00875
//  s: 0.5 + 0.5*0.01/0.01500001                 = 0.8333331111112593
//     s1*(0.5 + 0.5*0.01/0.00750001)            = 0.9722212222235802
//     s2*(0.5 + 0.5*0.01/0.00875001)            = 1.0416649603202939
//  U = 1e-3 * s.
TEST(Trs, MultiplicativeRuleByHandHalfMomentum) {
  TrsController c(constant_opts(TalrRule::multiplicative, 0.5), {"l"});
  const double k[] = {0.02, 0.0, 0.01};
  const double K[] = {0.015, 0.0075, 0.00875};
  const double s[] = {0.8333331111112593, 0.9722212222235802, 1.0416649603202939};
  for (int t = 0; t < 3; ++t) {
    c.update(t, {k[t]});
    expect_rel(c.ema(0), K[t], "K", t);
    expect_rel(c.talr(0), 1e-3 * s[t], "U", t);
    EXPECT_EQ(c.last_rate(0), k[t]);
  }
  EXPECT_EQ(c.updates(), 3);
}

// m = 0.99: K = 0.0101, 0.009999, 0.00999901;
//  s = 0.99 + 0.01*0.01/0.01010001 = 0.9999009802960591, then 0.9999019702960396,
//  0.9999029502960105 (each s *= 0.99 + 0.01*0.01/(K + 1e-8)).
TEST(Trs, MultiplicativeRuleByHandDefaultMomentum) {
  TrsController c(constant_opts(TalrRule::multiplicative, 0.99), {"l"});
  const double k[] = {0.02, 0.0, 0.01};
  const double K[] = {0.0101, 0.009999, 0.00999901};
  const double s[] = {0.9999009802960591, 0.9999019702960396, 0.9999029502960105};
  for (int t = 0; t < 3; ++t) {
    c.update(t, {k[t]});
    expect_rel(c.ema(0), K[t], "K", t);
    expect_rel(c.talr(0), 1e-3 * s[t], "U", t);
  }
}

// eta = 0.05 given explicitly. m = 0.5: K as above; U = 1e-3 + 0.05*(0.01 - 0.015) = 0.00075,
// + 0.05*(0.01 - 0.0075) = 0.000875, + 0.05*(0.01 - 0.00875) = 0.0009375.
// m = 0.99: U = 1e-3 + 0.05*(0.01 - 0.0101) = 0.000995, + 0.05*1e-6 = 0.00099505,
// + 0.05*9.9e-7 = 0.0009950995.
TEST(Trs, AdditiveRuleByHand) {
  const double k[] = {0.02, 0.0, 0.01};
  {
    TrsOptions o = constant_opts(TalrRule::additive, 0.5);
    o.talr_gain = 0.05;
    TrsController c(o, {"l"});
    EXPECT_EQ(c.gain(), 0.05);
    const double U[] = {0.00075, 0.000875, 0.0009375};
    for (int t = 0; t < 3; ++t) {
      c.update(t, {k[t]});
      expect_rel(c.talr(0), U[t], "U", t);
    }
  }
  {
    TrsOptions o = constant_opts(TalrRule::additive, 0.99);
    o.talr_gain = 0.05;
    TrsController c(o, {"l"});
    const double U[] = {0.000995, 0.00099505, 0.0009950995};
    const double K[] = {0.0101, 0.009999, 0.00999901};
    for (int t = 0; t < 3; ++t) {
      c.update(t, {k[t]});
      expect_rel(c.ema(0), K[t], "K", t);
      expect_rel(c.talr(0), U[t], "U", t);
    }
  }
}

// eta = 0.05, m = 0.5, k = 0.2 then zeros: K = 0.105, 0.0525, 0.02625, 0.013125, 0.0065625.
// Unclamped U would run far negative (1e-3 + 0.05*(0.05 - 0.2034375) < 0); clamped it sits at 0
// and restarts from 0 once K < R: U_4 = 0.05*(0.01 - 0.0065625) = 0.000171875.
TEST(Trs, AdditiveRuleClampsAtZero) {
  TrsOptions o = constant_opts(TalrRule::additive, 0.5);
  o.talr_gain = 0.05;
  TrsController c(o, {"l"});
  const double k[] = {0.2, 0, 0, 0, 0};
  for (int t = 0; t < 4; ++t) {
    c.update(t, {k[t]});
    EXPECT_EQ(c.talr(0), 0.0) << "step " << t;
  }
  c.update(4, {0.0});
  expect_rel(c.ema(0), 0.0065625, "K", 4);
  expect_rel(c.talr(0), 0.000171875, "U", 4);
}

TEST(Trs, LayersAreIndependent) {
  TrsOptions o = constant_opts(TalrRule::multiplicative, 0.5);
  TrsController two(o, {"a", "b"});
  TrsController a(o, {"a"}), b(o, {"b"});
  const double ka[] = {0.02, 0.0, 0.01}, kb[] = {0.0, 0.05, 0.003};
  for (int t = 0; t < 3; ++t) {
    two.update(t, {ka[t], kb[t]});
    a.update(t, {ka[t]});
    b.update(t, {kb[t]});
    EXPECT_EQ(two.talr(0), a.talr(0));
    EXPECT_EQ(two.talr(1), b.talr(0));
    EXPECT_EQ(two.ema(1), b.ema(0));
  }
}

TEST(Trs, TargetSchedule) {
  const double kPi = std::acos(-1.0);
  TrsOptions o;
  o.target_tr = 0.02;
  o.schedule.name = "cosine";
  o.schedule.total_steps = 100;
  TrsController cos(o, {"l"});
  EXPECT_DOUBLE_EQ(cos.target(0), 0.02);
  EXPECT_NEAR(cos.target(50), 0.01, 1e-17);
  EXPECT_NEAR(cos.target(25), 0.02 * (1 + std::cos(kPi / 4)) / 2, 1e-17);
  EXPECT_NEAR(cos.target(100), 0.0, 1e-17);
  EXPECT_NEAR(cos.target(1000), 0.0, 1e-17);

  o.schedule.name = "constant";
  TrsController cst(o, {"l"});
  for (int64_t t : {0, 7, 100000}) EXPECT_EQ(cst.target(t), 0.02);

  o.schedule.warmup_steps = 10;
  o.schedule.warmup_start_factor = 0.0;
  TrsController warm(o, {"l"});
  EXPECT_EQ(warm.target(0), 0.0);
  EXPECT_NEAR(warm.target(5), 0.01, 1e-17);
  EXPECT_EQ(warm.target(10), 0.02);
  EXPECT_EQ(warm.target(50), 0.02);

  // The target used by update() is the one at the given step: with m = 0 and k = K = R_t/2 the
  // multiplicative rule doubles s, whatever R_t is.
  o.schedule = LrScheduleOptions{};
  o.schedule.total_steps = 100;
  o.momentum = 0.0;
  TrsController at(o, {"l"});
  at.update(50, {0.005});
  EXPECT_NEAR(at.talr(0), o.talr_init * 0.01 / (0.005 + 1e-8), 1e-15);
  EXPECT_THROW(at.target(-1), ValueError);
}

TEST(Trs, InitialTargetFromFactor) {
  TrsOptions o;
  o.tr_factor = 5e-3;
  o.weight_bits = 2;
  EXPECT_DOUBLE_EQ(initial_target(o), 5e-3 * std::sqrt(2.0));
  o.weight_bits = 4;
  EXPECT_DOUBLE_EQ(initial_target(o), 1e-2);
  o.target_tr = 0.003;  // an explicit target wins
  EXPECT_EQ(initial_target(o), 0.003);
  o.schedule.total_steps = 10;
  EXPECT_EQ(TrsController(o, {"l"}).initial_target(), 0.003);
  EXPECT_EQ(TrsController(o, {"l"}).ema(0), 0.003);
}

TEST(Trs, AdditiveDefaultGain) {
  TrsOptions o = constant_opts(TalrRule::additive, 0.99);
  // (1 - m) * U_0 / R_0 = 0.01 * 1e-3 / 0.01 = 1e-3
  EXPECT_NEAR(additive_gain(o), 1e-3, 1e-18);
  EXPECT_NEAR(TrsController(o, {"l"}).gain(), 1e-3, 1e-18);
  o.momentum = 0.9;
  o.talr_init = 0.1;
  o.target_tr = 0.005;
  EXPECT_NEAR(additive_gain(o), 0.1 * 0.1 / 0.005, 1e-12);
  o.talr_gain = 0.3;  // explicit gain wins
  EXPECT_EQ(additive_gain(o), 0.3);
  // The default matches the multiplicative rule's first reaction to a small rate error.
  TrsOptions a = constant_opts(TalrRule::additive, 0.99), m = a;
  m.rule = TalrRule::multiplicative;
  TrsController ca(a, {"l"}), cm(m, {"l"});
  ca.update(0, {0.02});  // K = 0.0101: additive dU = 1e-3*(-1e-4) = -1e-7
  cm.update(0, {0.02});  // multiplicative dU = 1e-5*(0.01/0.01010001 - 1) = -9.9e-8
  EXPECT_NEAR(ca.talr(0) - 1e-3, -1e-7, 1e-18);
  EXPECT_NEAR((ca.talr(0) - 1e-3) / (cm.talr(0) - 1e-3), 1.0, 0.02);
}

TEST(Trs, SaveLoadRoundTrip) {
  for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
    TrsOptions o = constant_opts(rule, 0.9);
    o.schedule.name = "cosine";
    o.schedule.total_steps = 50;
    TrsController a(o, {"x", "y"});
    for (int t = 0; t < 5; ++t) a.update(t, {0.001 * t, 0.03 - 0.002 * t});
    NamedTensors st = a.state_tensors();
    ASSERT_EQ(st.size(), 5u);
    EXPECT_EQ(st[0].first, "trs.K");
    EXPECT_EQ(st[0].second.dtype(), DType::f64);
    EXPECT_EQ(st[4].first, "trs.updates");
    EXPECT_EQ(st[4].second.dtype(), DType::i64);

    TrsController b(o, {"x", "y"});
    b.load_state(st);
    EXPECT_EQ(b.updates(), 5);
    for (int t = 5; t < 12; ++t) {
      std::vector<double> k = {0.002 * (t % 3), 0.01 + 0.001 * t};
      a.update(t, k);
      b.update(t, k);
      for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(a.talr(i), b.talr(i));
        EXPECT_EQ(a.ema(i), b.ema(i));
        EXPECT_EQ(a.last_rate(i), b.last_rate(i));
      }
    }
  }
}

TEST(Trs, LoadRejectsMismatch) {
  TrsOptions o = constant_opts(TalrRule::multiplicative, 0.99);
  TrsController two(o, {"a", "b"}), three(o, {"a", "b", "c"});
  two.update(0, {0.5, 0.5});
  const double u = three.talr(0);
  EXPECT_THROW(three.load_state(two.state_tensors()), ValueError);
  EXPECT_EQ(three.talr(0), u) << "nothing changes on a failed load";
  NamedTensors missing = two.state_tensors();
  missing.pop_back();
  EXPECT_THROW(two.load_state(missing), ValueError);
  NamedTensors extra = two.state_tensors();
  extra.emplace_back("trs.other", Tensor::zeros({2}, DType::f64));
  EXPECT_THROW(two.load_state(extra), ValueError);
  NamedTensors wrong_dtype = two.state_tensors();
  wrong_dtype[2].second = Tensor::zeros({2}, DType::f32);
  EXPECT_THROW(two.load_state(wrong_dtype), ValueError);
}

TEST(Trs, BadOptionsAndRates) {
  auto bad = [](auto edit) {
    TrsOptions o = constant_opts(TalrRule::multiplicative, 0.99);
    edit(o);
    EXPECT_THROW(TrsController(o, {"l"}), ValueError);
  };
  bad([](TrsOptions& o) { o.talr_init = 0; });
  bad([](TrsOptions& o) { o.talr_init = -1; });
  bad([](TrsOptions& o) { o.momentum = 1.0; });
  bad([](TrsOptions& o) { o.momentum = std::nan(""); });
  bad([](TrsOptions& o) { o.weight_bits = 0; });
  bad([](TrsOptions& o) { o.target_tr = 1.5; });
  bad([](TrsOptions& o) {
    o.target_tr = 0;
    o.tr_factor = 0;
  });
  bad([](TrsOptions& o) {
    o.target_tr = 0;
    o.tr_factor = -1e-3;
  });
  bad([](TrsOptions& o) { o.schedule.name = "cosine"; });  // needs total_steps
  bad([](TrsOptions& o) { o.schedule.name = "nope"; });
  EXPECT_THROW(TrsController(constant_opts(TalrRule::additive, 0.9), {"a", "a"}), ValueError);

  TrsController c(constant_opts(TalrRule::multiplicative, 0.99), {"a", "b"});
  EXPECT_THROW(c.update(0, {0.1}), ValueError);
  EXPECT_THROW(c.update(0, {0.1, 1.5}), ValueError);
  EXPECT_THROW(c.update(0, {-0.1, 0.1}), ValueError);
  EXPECT_THROW(c.update(0, {std::nan(""), 0.1}), ValueError);
  EXPECT_THROW(c.update(-1, {0.1, 0.1}), ValueError);
  EXPECT_EQ(c.updates(), 0) << "rejected updates change nothing";
  EXPECT_EQ(c.ema(0), 0.01);
}

// Closed loop against a toy plant whose transition rate is proportional to the TALR
// (k = gain * U): the EMA K must settle on the target, and U on target / gain, from a plant
// that starts 3x too fast or 3x too slow.
TEST(Trs, ClosedLoopFollowsConstantTarget) {
  for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
    for (double ratio : {3.0, 1.0 / 3.0}) {
      TrsOptions o = constant_opts(rule, 0.99);  // default additive gain
      TrsController c(o, {"l"});
      const double plant = ratio * 0.01 / o.talr_init;
      double worst = 0;
      for (int t = 0; t < 1500; ++t) {
        c.update(t, {std::min(1.0, plant * c.talr(0))});
        if (t >= 1000) worst = std::max(worst, std::abs(c.ema(0) / 0.01 - 1));
      }
      EXPECT_LT(worst, 0.05) << talr_rule_name(rule) << " ratio " << ratio;
      EXPECT_NEAR(c.talr(0) * plant, 0.01, 0.05 * 0.01) << talr_rule_name(rule) << " " << ratio;
      // Not trivially there from the start.
      EXPECT_GT(std::abs(c.talr(0) - o.talr_init), 0.5 * o.talr_init);
    }
  }
}

// The same plant under the default cosine target: once settled, K stays close to R_t.
TEST(Trs, ClosedLoopFollowsCosineTarget) {
  for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
    for (double ratio : {3.0, 1.0 / 3.0}) {
      TrsOptions o = constant_opts(rule, 0.99);
      o.schedule = LrScheduleOptions{};
      o.schedule.total_steps = 10000;
      TrsController c(o, {"l"});
      const double plant = ratio * 0.01 / o.talr_init;
      double worst = 0;
      for (int t = 0; t < 10000; ++t) {
        c.update(t, {std::min(1.0, plant * c.talr(0))});
        if (t >= 2000 && t <= 9000) worst = std::max(worst, std::abs(c.ema(0) - c.target(t)));
      }
      EXPECT_LT(worst, 0.08 * 0.01) << talr_rule_name(rule) << " ratio " << ratio;
    }
  }
}

TEST(Trs, AutoMomentumFollowsTheRunLength) {
  // tau = clamp(total / 50, 10, 100): 1 - 1/tau.
  EXPECT_DOUBLE_EQ(auto_momentum(469), 0.9);              // tau 9.38 -> floor 10
  EXPECT_DOUBLE_EQ(auto_momentum(1000), 1.0 - 1.0 / 20);  // tau 20
  EXPECT_DOUBLE_EQ(auto_momentum(80000), 0.99);           // tau 1600 -> cap 100 (the method's m)
  EXPECT_DOUBLE_EQ(auto_momentum(0), 0.99);               // no total: the method's m
  TrsOptions o = constant_opts(TalrRule::multiplicative, -1.0);
  o.schedule.total_steps = 2000;
  TrsController c(o, {"l"});
  EXPECT_DOUBLE_EQ(c.momentum(), 1.0 - 1.0 / 40);
  // The EMA uses the resolved m: K = m*R_0 + (1-m)*k.
  c.update(0, {0.0});
  EXPECT_DOUBLE_EQ(c.ema(0), c.momentum() * c.initial_target());
  o.momentum = 0.5;  // an explicit value is kept
  EXPECT_DOUBLE_EQ(TrsController(o, {"l"}).momentum(), 0.5);
  // The additive rule's default gain uses the resolved m too.
  o.momentum = -1.0;
  EXPECT_NEAR(additive_gain(o), (1.0 / 40) * o.talr_init / initial_target(o), 1e-15);
}
