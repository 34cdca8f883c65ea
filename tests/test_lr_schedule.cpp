#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "optim/lr_schedule.h"

using namespace tranq;
using namespace tranq::optim;

namespace {

const double kPi = std::acos(-1.0);

LrScheduleOptions opts(const std::string& name, int64_t total = 0) {
  LrScheduleOptions o;
  o.name = name;
  o.total_steps = total;
  return o;
}

}  // namespace

TEST(LrSchedule, Constant) {
  auto s = make_lr_schedule(opts("constant"));
  for (int64_t k : {0, 1, 1000000}) EXPECT_EQ(s->factor(k), 1.0);
  EXPECT_EQ(s->describe(), "constant");
}

TEST(LrSchedule, CosineAtStartMiddleEnd) {
  auto s = make_lr_schedule(opts("cosine", 100));
  EXPECT_DOUBLE_EQ(s->factor(0), 1.0);
  EXPECT_NEAR(s->factor(50), 0.5, 1e-15);
  EXPECT_NEAR(s->factor(100), 0.0, 1e-15);
  EXPECT_NEAR(s->factor(25), (1 + std::cos(kPi / 4)) / 2, 1e-15);
  EXPECT_EQ(s->factor(150), 0.0) << "held at the end value after the run";

  LrScheduleOptions o = opts("cosine", 100);
  o.min_factor = 0.1;
  auto m = make_lr_schedule(o);
  // torch CosineAnnealingLR(T_max=100, eta_min=0.1), base lr 1 (torch 1.13, recursive form).
  EXPECT_NEAR(m->factor(0), 1.0, 1e-12);
  EXPECT_NEAR(m->factor(25), 0.86819805153394636, 1e-12);
  EXPECT_NEAR(m->factor(50), 0.55000000000000016, 1e-12);
  EXPECT_NEAR(m->factor(75), 0.23180194846605401, 1e-12);
  EXPECT_NEAR(m->factor(100), 0.10000000000000001, 1e-12);
  EXPECT_EQ(m->describe(), "cosine(total_steps=100, min_factor=0.1)");
}

TEST(LrSchedule, Linear) {
  LrScheduleOptions o = opts("linear", 10);
  o.min_factor = 0.2;
  auto s = make_lr_schedule(o);
  EXPECT_DOUBLE_EQ(s->factor(0), 1.0);
  EXPECT_DOUBLE_EQ(s->factor(5), 0.6);
  EXPECT_DOUBLE_EQ(s->factor(10), 0.2);
  EXPECT_DOUBLE_EQ(s->factor(11), 0.2);
}

TEST(LrSchedule, StepDecay) {
  LrScheduleOptions o = opts("step");
  o.step_size = 3;
  o.gamma = 0.5;
  auto s = make_lr_schedule(o);
  // torch StepLR(step_size=3, gamma=0.5)
  const std::vector<double> torch = {1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25};
  for (size_t k = 0; k < torch.size(); ++k) EXPECT_DOUBLE_EQ(s->factor(k), torch[k]) << k;
}

TEST(LrSchedule, MultiStep) {
  LrScheduleOptions o = opts("multistep");
  o.milestones = {6, 3, 6};  // unsorted; 6 twice applies gamma twice, as torch's Counter does
  o.gamma = 0.5;
  auto s = make_lr_schedule(o);
  // torch MultiStepLR(milestones=[3, 6, 6], gamma=0.5)
  const std::vector<double> torch = {1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.125, 0.125, 0.125, 0.125};
  for (size_t k = 0; k < torch.size(); ++k) EXPECT_DOUBLE_EQ(s->factor(k), torch[k]) << k;
  EXPECT_EQ(s->describe(), "multistep(milestones=[3, 6, 6], gamma=0.5)");
}

// The CLI's step schedule decays after each third of the run: exactly twice, whatever the
// run length, the last decay no later than the last step.
TEST(LrSchedule, RunScheduleStepDecaysTwiceOverTheRun) {
  for (int64_t total : {1, 2, 3, 5, 10, 11, 12, 100, 469}) {
    auto s = make_lr_schedule(run_schedule_options("step", total));
    EXPECT_DOUBLE_EQ(s->factor(0), 1.0) << total;
    int decays = 0;
    for (int64_t t = 1; t < total; ++t) decays += s->factor(t) < s->factor(t - 1) ? 1 : 0;
    EXPECT_EQ(decays, std::min<int64_t>(2, total - 1)) << total;
    if (total >= 3) {
      EXPECT_NEAR(s->factor(total - 1), 0.01, 1e-15) << total;
    }
  }
  // 10 steps: step_size 4, decays at steps 4 and 8 (not a third one at step 9).
  auto s = make_lr_schedule(run_schedule_options("step", 10));
  EXPECT_DOUBLE_EQ(s->factor(3), 1.0);
  EXPECT_NEAR(s->factor(4), 0.1, 1e-15);
  EXPECT_NEAR(s->factor(9), 0.01, 1e-15);
  // multistep at 50% and 75%.
  auto m = make_lr_schedule(run_schedule_options("multistep", 100));
  EXPECT_NEAR(m->factor(49), 1.0, 1e-15);
  EXPECT_NEAR(m->factor(50), 0.1, 1e-15);
  EXPECT_NEAR(m->factor(75), 0.01, 1e-15);
}

TEST(LrSchedule, WarmupComposesMultiplicatively) {
  LrScheduleOptions o = opts("multistep");
  o.milestones = {2, 6};
  o.warmup_steps = 4;
  o.warmup_start_factor = 0.1;
  auto s = make_lr_schedule(o);
  // torch ChainedScheduler([LinearLR(start_factor=0.1, total_iters=4), MultiStepLR([2, 6], 0.1)])
  const std::vector<double> torch = {
      0.10000000000000001, 0.32500000000000001, 0.055000000000000007, 0.077500000000000013,
      0.10000000000000002, 0.10000000000000002, 0.010000000000000002, 0.010000000000000002};
  for (size_t k = 0; k < torch.size(); ++k) EXPECT_NEAR(s->factor(k), torch[k], 1e-15) << k;

  LrScheduleOptions c = opts("cosine", 100);
  c.warmup_steps = 10;
  auto w = make_lr_schedule(c);
  EXPECT_EQ(w->factor(0), 0.0) << "warm-up from 0 by default";
  EXPECT_NEAR(w->factor(5), 0.5 * (1 + std::cos(kPi * 0.05)) / 2, 1e-15);
  EXPECT_NEAR(w->factor(10), (1 + std::cos(kPi * 0.1)) / 2, 1e-15);
  EXPECT_NEAR(w->factor(50), 0.5, 1e-15);
  EXPECT_NE(w->describe().find("warm-up over 10 steps"), std::string::npos) << w->describe();
}

TEST(LrSchedule, OneCycleMatchesTorch) {
  auto s = make_lr_schedule(opts("onecycle", 100));
  // torch OneCycleLR(max_lr=1, total_steps=100) defaults: pct_start 0.3, div 25, final_div 1e4.
  const std::vector<std::pair<int64_t, double>> torch = {{0, 0.040000000000000036},
                                                         {1, 0.042813780565907456},
                                                         {10, 0.29516394846410077},
                                                         {28, 0.99718621943409258},
                                                         {29, 1.0},
                                                         {30, 0.99949653528452431},
                                                         {50, 0.79389345057573202},
                                                         {98, 0.00050746471547578789},
                                                         {99, 3.9999999999999998e-06}};
  for (auto [k, v] : torch) EXPECT_NEAR(s->factor(k), v, 1e-14) << k;
  EXPECT_NEAR(s->factor(500), 4e-6, 1e-14) << "held at the final value";

  LrScheduleOptions o = opts("onecycle", 10);
  o.onecycle_pct_start = 0.25;
  o.onecycle_div_factor = 10;
  o.onecycle_final_div_factor = 100;
  auto t = make_lr_schedule(o);
  const std::vector<double> torch10 = {0.099999999999999978, 0.77499999999999991,
                                       0.9890847265665359,   0.90460398869028624,
                                       0.75024999999999997,  0.55271196740219297,
                                       0.34614601130971379,  0.16626926212375048,
                                       0.044184043907520815, 0.001};
  for (size_t k = 0; k < torch10.size(); ++k) EXPECT_NEAR(t->factor(k), torch10[k], 1e-14) << k;
}

TEST(LrSchedule, RejectsBadOptions) {
  try {
    make_lr_schedule(opts("exponential", 10));
    ADD_FAILURE();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("constant, step, multistep, cosine, linear, onecycle"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_lr_schedule(opts("cosine", 0)), ValueError);
  EXPECT_THROW(make_lr_schedule(opts("onecycle", 3)), ValueError)
      << "0.3 * 3 steps: no warm-up phase";
  EXPECT_THROW(make_lr_schedule(opts("step")), ValueError) << "step_size 0";
  EXPECT_THROW(make_lr_schedule(opts("multistep")), ValueError) << "no milestones";
  LrScheduleOptions neg = opts("multistep");
  neg.milestones = {-1};
  EXPECT_THROW(make_lr_schedule(neg), ValueError);
  LrScheduleOptions w = opts("constant");
  w.warmup_steps = -1;
  EXPECT_THROW(make_lr_schedule(w), ValueError);
  w.warmup_steps = 5;
  w.warmup_start_factor = 1.5;
  EXPECT_THROW(make_lr_schedule(w), ValueError);
  LrScheduleOptions m = opts("cosine", 10);
  m.min_factor = -0.1;
  EXPECT_THROW(make_lr_schedule(m), ValueError);
  EXPECT_THROW(make_lr_schedule(opts("constant"))->factor(-1), ValueError);
  // Options a schedule does not use are not checked (the trainer fills them all).
  LrScheduleOptions unused = opts("cosine", 10);
  unused.milestones = {0, 0};
  unused.step_size = 0;
  EXPECT_NO_THROW(make_lr_schedule(unused));
}
