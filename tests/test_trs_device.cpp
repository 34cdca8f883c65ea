// The device-side TRS step (issue 5, "fused kernel 3"), kernel level on the CPU: counts written
// into a table by the transition passes, the TALR controller update on the table, the
// optimizers' learning rates from a device table, and TrsDeviceState. Every new function
// against the host code it replaces, bit for bit (the CPU versions are the references of the
// CUDA kernels, tests/test_cuda_trs_device.cpp). QatController's device path:
// tests/test_qat_device_path.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/optim_update.h"
#include "kernels/transition_stats.h"
#include "kernels/trs_math.h"
#include "kernels/trs_update.h"
#include "optim/optimizer.h"
#include "optim/trs.h"
#include "optim/trs_device.h"
#include "trs_device_util.h"

using namespace tranq;
using namespace tranq::test;
using kernels::QuantRange;

// ---------------------------------------------------------------------------------------------
// The shared per-layer formula (kernels/trs_math.h)

namespace {

// x*y + z with both operations rounded (what -ffp-contract=off or __dmul_rn/__dadd_rn give).
double unfused(double x, double y, double z) {
  volatile double p = x * y;  // volatile: the test's compiler must not fuse either
  return p + z;
}

}  // namespace

// Each multiply-add is one fused operation (rounded once), written out here by hand; so the
// result does not depend on a compiler's contraction choices, and it is not the twice-rounded
// value either (which some inputs tell apart).
TEST(TrsMath, LayerStepRoundsEachMultiplyAddOnce) {
  Rng rng(3);
  int fused_differs = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    kernels::TrsStep p;
    p.target = 0.02 * rng.uniform();
    p.momentum = 0.9 + 0.099 * rng.uniform();
    p.eta = 0.1 * rng.uniform();
    p.talr_init = 0.01 + 0.05 * rng.uniform();
    p.additive = trial % 2 == 1;
    const double k = 0.1 * rng.uniform(), K0 = 0.05 * rng.uniform(), s0 = 0.5 + rng.uniform(),
                 U0 = 0.02 * rng.uniform();
    double K = K0, s = s0, U = U0;
    kernels::trs_layer_step(k, p, &K, &s, &U);
    const double m = p.momentum;
    const double K_want = std::fma(m, K0, (1 - m) * k);
    ASSERT_EQ(K, K_want) << trial;
    if (p.additive) {
      const double u = std::fma(p.eta, p.target - K_want, U0);
      ASSERT_EQ(U, std::max(0.0, u)) << trial;
      ASSERT_EQ(s, s0);
    } else {
      const double s_want = std::fma(m, s0, (1 - m) * s0 * p.target / (K_want + 1e-8));
      ASSERT_EQ(s, s_want) << trial;
      ASSERT_EQ(U, p.talr_init * s_want) << trial;
    }
    fused_differs += K != unfused(m, K0, (1 - m) * k);
  }
  EXPECT_GT(fused_differs, 0) << "no input told the fused from the unfused rounding";
  // The additive rule clamps at 0, NaN included (std::max(0.0, NaN) is 0).
  kernels::TrsStep p;
  p.additive = true;
  p.eta = 1.0;
  p.target = 0.0;
  double K = 0.5, s = 1.0, U = 0.1;
  kernels::trs_layer_step(1.0, p, &K, &s, &U);
  EXPECT_EQ(U, 0.0);
  U = NAN;
  kernels::trs_layer_step(1.0, p, &K, &s, &U);
  EXPECT_EQ(U, 0.0);
}

// ---------------------------------------------------------------------------------------------
// trs_update (CPU) against TrsController::update

TEST(TrsUpdate, CpuEqualsTheHostControllerBitForBit) {
  for (const RuleCase& rc : kRules) {
    TrsController ref(cosine_opts(rc.rule, rc.momentum, rc.gain), layer_names());
    State st(ref);
    bool clamped = false;
    for (int64_t step = 0; step < 50; ++step) {
      st.update(counts_table(step), step_of(ref, step));
      ref.update(step, host_rates(step));
      const auto t = ref.state_tensors();
      const std::string what = std::string(optim::talr_rule_name(rc.rule)) +
                               " m=" + std::to_string(rc.momentum) + " step " +
                               std::to_string(step);
      ASSERT_TRUE(bits_equal(st.K, t[0].second)) << what;
      ASSERT_TRUE(bits_equal(st.s, t[1].second)) << what;
      ASSERT_TRUE(bits_equal(st.U, t[2].second)) << what;
      ASSERT_TRUE(bits_equal(st.k, t[3].second)) << what;
      for (size_t i = 0; i < ref.num_layers(); ++i) clamped |= ref.talr(i) == 0.0;
    }
    EXPECT_EQ(st.bad.to_vector<int64_t>(), std::vector<int64_t>(4, 0));
    if (rc.gain > 0) {
      EXPECT_TRUE(clamped) << "the additive clamp was not exercised";
    }
    // The state moved away from its start (a test of something).
    EXPECT_NE(ref.talr(0), ref.options().talr_init);
  }
}

TEST(TrsUpdate, InvalidRowsAreSkippedAndTheirFirstStepKept) {
  TrsController ref(cosine_opts(TalrRule::multiplicative, 0.9), layer_names());
  State st(ref);
  Tensor c = counts_table(0);
  int64_t* p = c.data<int64_t>();
  p[1 * 4 + 1] = -3;  // layer 1: the CUDA pass's bad-scale report
  p[2 * 4 + 1] = 2;   // layer 2: changed > numel (1)
  const std::vector<double> K0 = st.K.to_vector<double>(), U0 = st.U.to_vector<double>();
  st.update(c, step_of(ref, 4));
  const auto K1 = st.K.to_vector<double>(), U1 = st.U.to_vector<double>();
  EXPECT_NE(K1[0], K0[0]);  // valid rows are updated
  EXPECT_EQ(K1[1], K0[1]);
  EXPECT_EQ(U1[1], U0[1]);
  EXPECT_EQ(K1[2], K0[2]);
  EXPECT_EQ(st.bad.to_vector<int64_t>(), (std::vector<int64_t>{0, 5, 5, 0}));
  st.update(c, step_of(ref, 9));  // a later bad step does not overwrite the first
  EXPECT_EQ(st.bad.to_vector<int64_t>(), (std::vector<int64_t>{0, 5, 5, 0}));
}

TEST(TrsUpdate, ChecksItsArguments) {
  TrsController ref(cosine_opts(TalrRule::multiplicative, 0.9), layer_names());
  State st(ref);
  const kernels::TrsStep p = step_of(ref, 0);
  const Tensor f = Tensor::zeros({4}, DType::f64), i = Tensor::zeros({4}, DType::i64);
  EXPECT_THROW(
      kernels::trs_update(Tensor::zeros({4, 3}, DType::i64), p, st.K, st.s, st.U, st.k, st.bad),
      ValueError);
  EXPECT_THROW(
      kernels::trs_update(Tensor::zeros({4, 4}, DType::f64), p, st.K, st.s, st.U, st.k, st.bad),
      ValueError);
  EXPECT_THROW(kernels::trs_update(counts_table(0), p, Tensor::zeros({3}, DType::f64), st.s, st.U,
                                   st.k, st.bad),
               ValueError);
  EXPECT_THROW(kernels::trs_update(counts_table(0), p, st.K, st.s, st.U, st.k, f), ValueError);
  EXPECT_THROW(kernels::trs_update(counts_table(0), p, st.K, st.s, i, st.k, st.bad), ValueError);
}

TEST(TransitionInto, CpuRowsEqualThePasses) {
  for (DType dt : {DType::f32, DType::f64})
    for (int bits : {1, 2, 4}) {
      const QuantRange r = kernels::weight_range(bits);
      PassInput a = pass_input(dt, 6, 50, 10 + bits), b = clone(a);
      Tensor table = Tensor::full({3, 4}, -7.0, DType::i64);
      const auto ka = kernels::weight_transition_init(a.w, a.scale, r, a.codes, a.prev, 0.2);
      kernels::weight_transition_init_into(b.w, b.scale, r, b.codes, b.prev, 0.2, table, 2);
      EXPECT_EQ(table.to_vector<int64_t>(),
                (std::vector<int64_t>{-7, -7, -7, -7, -7, -7, -7, -7, ka.numel, ka.changed,
                                      ka.oscillated, ka.near}));
      for (int step = 0; step < 3; ++step) {
        nudge(a.w, 100 + step);
        b.w.copy_(a.w);
        const auto kp = kernels::weight_transition_pass(a.w, a.scale, r, a.codes, a.prev, 0.1);
        kernels::weight_transition_pass_into(b.w, b.scale, r, b.codes, b.prev, 0.1, table, 0);
        const auto row = table.to_vector<int64_t>();
        EXPECT_EQ((std::vector<int64_t>(row.begin(), row.begin() + 4)),
                  (std::vector<int64_t>{kp.numel, kp.changed, kp.oscillated, kp.near}));
        EXPECT_GT(kp.changed, 0);
        EXPECT_TRUE(bits_equal(a.codes, b.codes));
        EXPECT_TRUE(bits_equal(a.prev, b.prev));
      }
    }
}

TEST(TransitionInto, CpuChecksTheTableBeforeTouchingCodes) {
  const QuantRange r = kernels::weight_range(2);
  PassInput a = pass_input(DType::f32, 4, 8, 3);
  const Tensor codes0 = a.codes.clone();
  EXPECT_THROW(kernels::weight_transition_pass_into(a.w, a.scale, r, a.codes, a.prev, 0.1,
                                                    Tensor::zeros({2, 4}, DType::i64), 2),
               ValueError);
  EXPECT_THROW(kernels::weight_transition_pass_into(a.w, a.scale, r, a.codes, a.prev, 0.1,
                                                    Tensor::zeros({2, 4}, DType::f64), 0),
               ValueError);
  EXPECT_THROW(kernels::weight_transition_pass_into(a.w, a.scale, r, a.codes, a.prev, 0.1,
                                                    Tensor::zeros({2, 3}, DType::i64), 0),
               ValueError);
  EXPECT_TRUE(bits_equal(a.codes, codes0));
  // A bad scale is a ValueError on the CPU (the CUDA version reports it in the row).
  a.scale.fill_(0.0);
  EXPECT_THROW(kernels::weight_transition_pass_into(a.w, a.scale, r, a.codes, a.prev, 0.1,
                                                    Tensor::zeros({2, 4}, DType::i64), 0),
               ValueError);
}

TEST(MultiUpdateTable, CpuSgdEqualsHostLrs) {
  const Tensor table = Tensor::from_vector<double>(kTable, {5});
  for (DType dt : {DType::f32, DType::f64})
    for (double momentum : {0.0, 0.9})
      for (bool nesterov : {false, true}) {
        if (nesterov && momentum == 0) continue;
        MultiSet a = multi_set(dt, 7), b = clone(a);
        for (int step = 0; step < 3; ++step) {
          kernels::multi_sgd_update(a.p, a.g, a.b1, table_lrs(), momentum, 0.0, 1e-2, nesterov,
                                    step == 0);
          kernels::multi_sgd_update(b.p, b.g, b.b1, table, kIndex, momentum, 0.0, 1e-2, nesterov,
                                    step == 0);
        }
        expect_same(a, b, std::string(dtype_name(dt)) + " sgd m=" + std::to_string(momentum));
      }
}

TEST(MultiUpdateTable, CpuAdamEqualsHostLrs) {
  const Tensor table = Tensor::from_vector<double>(kTable, {5});
  for (DType dt : {DType::f32, DType::f64})
    for (bool decoupled : {false, true}) {
      MultiSet a = multi_set(dt, 17), b = clone(a);
      for (int64_t step = 1; step <= 3; ++step) {
        const std::vector<int64_t> steps = {step, step, step + 2, step};
        kernels::multi_adam_update(a.p, a.g, a.b1, a.b2, table_lrs(), 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
        kernels::multi_adam_update(b.p, b.g, b.b1, b.b2, table, kIndex, 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
      }
      expect_same(a, b, std::string(dtype_name(dt)) + (decoupled ? " adamw" : " adam"));
    }
}

TEST(MultiUpdateTable, ChecksTheTable) {
  MultiSet a = multi_set(DType::f32, 27);
  const MultiSet before = clone(a);
  const Tensor table = Tensor::from_vector<double>(kTable, {5});
  auto sgd = [&](const Tensor& t, const std::vector<int64_t>& idx) {
    kernels::multi_sgd_update(a.p, a.g, {}, t, idx, 0.0, 0.0, 0.0, false, true);
  };
  EXPECT_THROW(sgd(table, {0, 1, 5, 0}), ValueError);   // out of range
  EXPECT_THROW(sgd(table, {0, 1, -1, 0}), ValueError);  // negative
  EXPECT_THROW(sgd(table, {0, 1}), ValueError);         // too short
  EXPECT_THROW(sgd(Tensor(), kIndex), ValueError);      // undefined
  EXPECT_THROW(sgd(table.to(DType::f32), kIndex), ValueError);
  EXPECT_THROW(sgd(Tensor::zeros({5, 1}, DType::f64), kIndex), ValueError);
  expect_same(a, before, "after failed calls");
}

// ---------------------------------------------------------------------------------------------
// TrsDeviceState on the CPU device

TEST(TrsDeviceState, CpuReproducesTheControllerAndSyncs) {
  for (const RuleCase& rc : kRules) {
    const TrsOptions o = cosine_opts(rc.rule, rc.momentum, rc.gain);
    TrsController ref(o, layer_names()), host(o, layer_names());
    optim::TrsDeviceState dev(host, Device::cpu());
    EXPECT_EQ(dev.num_layers(), 4u);
    const Tensor U = dev.talr();
    for (int64_t step = 0; step < 50; ++step) {
      dev.update(step, counts_table(step));
      ref.update(step, host_rates(step));
      EXPECT_EQ(dev.target(step), ref.target(step));
      ASSERT_TRUE(bits_equal(dev.talr(), ref.state_tensors()[2].second)) << step;
    }
    EXPECT_TRUE(dev.talr().same_as(U));  // updated in place: a group's lr_table stays valid
    EXPECT_EQ(dev.updates(), 50);
    expect_same_state(dev.state_tensors(), ref.state_tensors(), "state_tensors");
    dev.sync_to(host);
    expect_same_state(host.state_tensors(), ref.state_tensors(), "synced controller");
    EXPECT_EQ(host.updates(), 50);
    EXPECT_EQ(host.talr(1), ref.talr(1));
    EXPECT_EQ(host.ema(2), ref.ema(2));
  }
}

TEST(TrsDeviceState, LoadFromCopiesInPlace) {
  const TrsOptions o = cosine_opts(TalrRule::multiplicative, 0.9);
  TrsController ref(o, layer_names());
  for (int64_t step = 0; step < 7; ++step) ref.update(step, host_rates(step));
  TrsController fresh(o, layer_names());
  optim::TrsDeviceState dev(fresh, Device::cpu());
  const Tensor U = dev.talr();
  dev.load_from(ref);
  EXPECT_TRUE(dev.talr().same_as(U));
  expect_same_state(dev.state_tensors(), ref.state_tensors(), "loaded");
  // And continues exactly like the controller.
  dev.update(7, counts_table(7));
  ref.update(7, host_rates(7));
  expect_same_state(dev.state_tensors(), ref.state_tensors(), "after one more update");
}

TEST(TrsDeviceState, SyncRaisesBadRowsAndLeavesTheControllerAlone) {
  const TrsOptions o = cosine_opts(TalrRule::additive, 0.9);
  TrsController host(o, layer_names());
  optim::TrsDeviceState dev(host, Device::cpu());
  dev.update(0, counts_table(0));
  Tensor c = counts_table(1);
  c.data<int64_t>()[3 * 4 + 1] = -1;
  dev.update(1, c);
  try {
    dev.sync_to(host);
    ADD_FAILURE() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("d: first at step 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(host.updates(), 0);
  EXPECT_THROW(dev.check_valid(), ValueError);  // the flag stays until a load_from
  dev.load_from(host);
  EXPECT_NO_THROW(dev.check_valid());
  dev.sync_to(host);
  EXPECT_EQ(host.updates(), 0);
  EXPECT_THROW(dev.update(-1, counts_table(0)), ValueError);
  EXPECT_THROW(dev.update(2, Tensor::zeros({3, 4}, DType::i64)), ValueError);
}

// ---------------------------------------------------------------------------------------------
// The optimizers' lr_table hook

namespace {

std::vector<optim::ParamGroup> two_groups(uint64_t seed) {
  std::vector<optim::ParamGroup> gs(3);
  for (size_t i = 0; i < gs.size(); ++i) {
    gs[i].names = {"p" + std::to_string(i), "q" + std::to_string(i)};
    gs[i].params = {test::random_tensor({7}, seed + 2 * i, -1, 1, DType::f32),
                    test::random_tensor({3, 2}, seed + 2 * i + 1, -1, 1, DType::f32)};
    gs[i].lr = 0.1 * static_cast<double>(i + 1);
    gs[i].momentum = 0.9;
    gs[i].weight_decay = i == 1 ? 1e-2 : 0.0;
  }
  return gs;
}

void set_grads(optim::Optimizer& opt, uint64_t seed) {
  for (auto& g : opt.param_groups())
    for (auto& p : g.params) p.set_grad(test::random_tensor(p.shape(), seed++, -1, 1, DType::f32));
}

}  // namespace

TEST(OptimizerLrTable, GroupsWithATableEqualHostLrs) {
  for (const std::string name : {"sgd", "adam", "adamw"}) {
    auto a = optim::make_optimizer(name, two_groups(40));
    auto b = optim::make_optimizer(name, two_groups(40));
    // Groups 0 and 2 take their rates from the table (as the TALRs would), group 1 from lr.
    const Tensor table = Tensor::from_vector<double>({0.7, 0.03, 0.2}, {3});
    b->param_groups()[0].lr_table = table;
    b->param_groups()[0].lr_table_index = 1;
    b->param_groups()[2].lr_table = table;
    b->param_groups()[2].lr_table_index = 0;
    a->param_groups()[0].lr = 0.03;
    a->param_groups()[2].lr = 0.7;
    for (int step = 0; step < 3; ++step) {
      set_grads(*a, 100 * step);
      set_grads(*b, 100 * step);
      a->step();
      b->step();
    }
    for (size_t gi = 0; gi < 3; ++gi)
      for (size_t i = 0; i < 2; ++i)
        EXPECT_TRUE(bits_equal(a->param_groups()[gi].params[i], b->param_groups()[gi].params[i]))
            << name << " group " << gi << " param " << i;
    expect_same_state(a->state_tensors(), b->state_tensors(), name);
    b->param_groups()[2].lr_table_index = 3;
    EXPECT_THROW(b->step(), ValueError);
    b->param_groups()[2].lr_table_index = 0;
    b->param_groups()[2].lr_table = table.to(DType::f32);
    EXPECT_THROW(b->step(), ValueError);
  }
}
