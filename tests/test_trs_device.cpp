// The device-side TRS step (issue 5, "fused kernel 3"): counts written into a table by the
// transition passes, the TALR controller update on the table, the optimizers' learning rates
// from a device table, TrsDeviceState and QatController's device path.
// CPU: every new function against the host code it replaces, bit for bit (the CPU versions are
// the references of the CUDA kernels). CUDA (skipped with the reason without a GPU): every new
// kernel against its CPU version, and a QatController step on CUDA against the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "cuda_test_util.h"
#include "gradcheck.h"
#include "kernels/optim_update.h"
#include "kernels/transition_stats.h"
#include "kernels/trs_update.h"
#include "models/registry.h"
#include "optim/optimizer.h"
#include "optim/trs.h"
#include "optim/trs_device.h"
#include "quant/qat_controller.h"
#include "quant/transform.h"

using namespace tranq;
using kernels::QuantRange;
using optim::TalrRule;
using optim::TrsController;
using optim::TrsOptions;

namespace {

bool bits_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ha = a.to(Device::cpu()).contiguous(), hb = b.to(Device::cpu()).contiguous();
  return std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

void expect_same_state(const NamedTensors& a, const NamedTensors& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << what;
    EXPECT_TRUE(bits_equal(a[i].second, b[i].second)) << what << ": " << a[i].first;
  }
}

// Options with a cosine target, so R_t changes every step.
TrsOptions cosine_opts(TalrRule rule, double momentum, double gain = 0.0) {
  TrsOptions o;
  o.target_tr = 0.02;
  o.schedule.name = "cosine";
  o.schedule.total_steps = 60;
  o.rule = rule;
  o.talr_init = 0.05;
  o.talr_gain = gain;
  o.momentum = momentum;
  return o;
}

const std::vector<int64_t> kNumels = {1000, 37, 1, 0};

// A hand sequence of changed counts: steady, bursts, all and none, per layer.
int64_t changed_at(int64_t step, size_t layer) {
  const int64_t n = kNumels[layer];
  if (n == 0) return 0;
  if (step % 11 == 5) return n;  // every weight
  if (step % 7 == 3) return 0;
  return (step * 37 + static_cast<int64_t>(layer) * 13) % (n / 8 + 2);
}

Tensor counts_table(int64_t step) {
  std::vector<int64_t> v;
  for (size_t i = 0; i < kNumels.size(); ++i) {
    const int64_t c = changed_at(step, i);
    v.insert(v.end(), {kNumels[i], c, c / 2, c / 3});
  }
  return Tensor::from_vector<int64_t>(v, {static_cast<int64_t>(kNumels.size()), 4});
}

// The rates QatController hands to TrsController::update.
std::vector<double> host_rates(int64_t step) {
  std::vector<double> k;
  for (size_t i = 0; i < kNumels.size(); ++i)
    k.push_back(static_cast<double>(changed_at(step, i)) /
                static_cast<double>(std::max<int64_t>(kNumels[i], 1)));
  return k;
}

std::vector<std::string> layer_names() {
  return {"a", "b", "c", "d"};
}

kernels::TrsStep step_of(const TrsController& c, int64_t step) {
  kernels::TrsStep p;
  p.target = c.target(step);
  p.momentum = c.momentum();
  p.eta = c.gain();
  p.talr_init = c.options().talr_init;
  p.additive = c.options().rule == TalrRule::additive;
  p.step = step;
  return p;
}

struct State {
  Tensor K, s, U, k, bad;
  explicit State(const TrsController& c, Device d = Device::cpu()) {
    const auto t = c.state_tensors();
    K = t[0].second.to(d).clone();
    s = t[1].second.to(d).clone();
    U = t[2].second.to(d).clone();
    k = t[3].second.to(d).clone();
    bad = Tensor::zeros({static_cast<int64_t>(c.num_layers())}, DType::i64, d);
  }
  void update(const Tensor& counts, const kernels::TrsStep& p) const {
    kernels::trs_update(counts, p, K, s, U, k, bad);
  }
};

struct RuleCase {
  TalrRule rule;
  double momentum, gain;
};
const RuleCase kRules[] = {{TalrRule::multiplicative, -1.0, 0.0},
                           {TalrRule::multiplicative, 0.9, 0.0},
                           {TalrRule::additive, 0.9, 0.0},
                           {TalrRule::additive, 0.5, 5.0}};  // big gain: U hits the clamp at 0

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// weight_transition_*_into (CPU) against the passes

namespace {

struct PassInput {
  Tensor w, scale, codes, prev;
};

PassInput pass_input(DType dt, int64_t out, int64_t inner, uint64_t seed) {
  PassInput in;
  in.w = test::random_tensor({out, inner}, seed, -1.5, 1.5, dt);
  in.scale = test::random_tensor({out}, seed + 1, 0.5, 2.0, dt);
  in.codes = Tensor::zeros({out, inner}, DType::i8);
  in.prev = Tensor::zeros({out, inner}, DType::i8);
  return in;
}

PassInput clone(const PassInput& a) {
  return PassInput{a.w.clone(), a.scale.clone(), a.codes.clone(), a.prev.clone()};
}

void nudge(const Tensor& w, uint64_t seed) {
  const Tensor d = test::random_tensor(w.shape(), seed, -0.3, 0.3, w.dtype());
  Tensor nw = Tensor::empty_like(w);
  {
    NoGradGuard ng;
    if (w.dtype() == DType::f32) {
      auto a = w.to_vector<float>(), b = d.to_vector<float>();
      for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
      nw = Tensor::from_vector<float>(a, w.shape());
    } else {
      auto a = w.to_vector<double>(), b = d.to_vector<double>();
      for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
      nw = Tensor::from_vector<double>(a, w.shape());
    }
  }
  w.copy_(nw);
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// multi_*_update with an lr table (CPU) against the host-lrs version

namespace {

struct MultiSet {
  std::vector<Tensor> p, g, b1, b2;
};

MultiSet multi_set(DType dt, uint64_t seed) {
  MultiSet m;
  const std::vector<int64_t> sizes = {5, 130, 1, 64};
  for (size_t i = 0; i < sizes.size(); ++i) {
    m.p.push_back(test::random_tensor({sizes[i]}, seed + i, -1, 1, dt));
    m.g.push_back(test::random_tensor({sizes[i]}, seed + 10 + i, -1, 1, dt));
    m.b1.push_back(Tensor::zeros({sizes[i]}, dt));
    m.b2.push_back(Tensor::zeros({sizes[i]}, dt));
  }
  return m;
}

MultiSet clone(const MultiSet& a) {
  MultiSet m;
  for (size_t i = 0; i < a.p.size(); ++i) {
    m.p.push_back(a.p[i].clone());
    m.g.push_back(a.g[i].clone());
    m.b1.push_back(a.b1[i].clone());
    m.b2.push_back(a.b2[i].clone());
  }
  return m;
}

void expect_same(const MultiSet& a, const MultiSet& b, const std::string& what) {
  for (size_t i = 0; i < a.p.size(); ++i) {
    EXPECT_TRUE(bits_equal(a.p[i], b.p[i])) << what << " param " << i;
    EXPECT_TRUE(bits_equal(a.b1[i], b.b1[i])) << what << " state " << i;
    EXPECT_TRUE(bits_equal(a.b2[i], b.b2[i])) << what << " state2 " << i;
  }
}

// Entries shared and out of order, one unused.
const std::vector<double> kTable = {0.3, 0.05, 1e-3, 7.0, 0.11};
const std::vector<int64_t> kIndex = {2, 0, 2, 4};
std::vector<double> table_lrs() {
  std::vector<double> l;
  for (int64_t i : kIndex) l.push_back(kTable[static_cast<size_t>(i)]);
  return l;
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// QatController: the device path (forced on the CPU) equals the host path

namespace {

using Layers = std::vector<std::pair<std::string, quant::QuantizedLayer*>>;

// A quantized resnet20 (W2A2) and an optimizer with one group per quantized weight, as
// apps/run_setup.cpp builds them.
struct Rig {
  std::shared_ptr<Module> model;
  Layers layers;
  std::vector<size_t> groups;
  std::unique_ptr<optim::Optimizer> opt;
  Tensor x, proj;

  Rig(const std::string& opt_name, Device device) {
    model = create_model("resnet20", 1, 10, 17);
    quant::QuantizeOptions o;
    o.spec.weight_bits = 2;
    o.spec.act_bits = 2;
    quant::quantize_model(*model, o);
    layers = quant::quantized_layers(*model);
    x = test::random_tensor({4, 1, 8, 8}, 18, -1, 1, DType::f32);
    quant::calibrate_activation_scales(*model, x);
    // The output shape on the CPU: the CUDA rig never runs a forward pass (no cuDNN needed).
    proj = test::random_tensor((*model)(x).shape(), 19, -1, 1, DType::f32).to(device);
    model->to(device);
    x = x.to(device);
    std::vector<optim::ParamGroup> gs(1 + layers.size());
    std::set<const TensorImpl*> layer_weights;
    groups.resize(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      groups[i] = i + 1;
      gs[i + 1].names = {layers[i].first + ".weight"};
      gs[i + 1].params = {layers[i].second->weight()};
      layer_weights.insert(layers[i].second->weight().impl());
    }
    for (auto& g : gs) {
      g.lr = 0.01;
      g.momentum = opt_name == "sgd" ? 0.9 : 0.0;
    }
    for (auto& [n, p] : model->named_parameters()) {
      if (layer_weights.count(p.impl())) continue;
      gs[0].names.push_back(n);
      gs[0].params.push_back(p);
    }
    opt = optim::make_optimizer(opt_name, std::move(gs));
  }

  std::unique_ptr<quant::QatController> controller(TalrRule rule) const {
    TrsOptions o;
    o.target_tr = 0.05;
    o.schedule.name = "cosine";
    o.schedule.total_steps = 20;
    o.rule = rule;
    o.talr_init = 0.5;  // big, so that codes change every step
    std::vector<std::string> names;
    for (auto& [n, q] : layers) names.push_back(n);
    return std::make_unique<quant::QatController>(layers, groups,
                                                  std::make_unique<TrsController>(o, names));
  }

  void backward() {
    opt->zero_grad();
    ops::sum(ops::mul((*model)(x), proj)).backward();
  }
};

std::vector<std::vector<int64_t>> counts_of(const quant::QatController& q) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& l : q.last())
    out.push_back({l.counts.numel, l.counts.changed, l.counts.oscillated, l.counts.near});
  return out;
}

}  // namespace

TEST(QatControllerDevicePath, ForcedOnCpuEqualsTheHostPath) {
  for (const std::string opt_name : {"sgd", "adam"})
    for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
      const std::string what = opt_name + " " + optim::talr_rule_name(rule);
      Rig a(opt_name, Device::cpu()), b(opt_name, Device::cpu());
      auto qa = a.controller(rule), qb = b.controller(rule);
      qb->set_force_device_path(true);
      EXPECT_FALSE(qa->deferred());
      EXPECT_TRUE(qb->deferred());
      qa->initialise();
      qb->initialise();
      std::vector<std::vector<std::vector<int64_t>>> host_counts;
      std::vector<double> host_totals;
      for (int64_t step = 0; step < 6; ++step) {
        a.backward();
        b.backward();
        qa->before_step(*a.opt);
        qb->before_step(*b.opt);
        EXPECT_TRUE(b.opt->param_groups()[b.groups[0]].lr_table.defined());
        EXPECT_FALSE(a.opt->param_groups()[a.groups[0]].lr_table.defined());
        a.opt->step();
        b.opt->step();
        qa->after_step(step);
        qb->after_step(step);
        host_counts.push_back(counts_of(*qa));
        host_totals.push_back(qa->total().tr);
        for (size_t i = 0; i < a.layers.size(); ++i) {
          ASSERT_TRUE(bits_equal(a.layers[i].second->weight(), b.layers[i].second->weight()))
              << what << " step " << step << " layer " << i;
          ASSERT_TRUE(bits_equal(a.layers[i].second->codes(), b.layers[i].second->codes()));
          ASSERT_TRUE(
              bits_equal(a.layers[i].second->prev_codes(), b.layers[i].second->prev_codes()));
        }
        // Checkpoints need no sync: the device state is read directly.
        expect_same_state(qb->state_tensors(), qa->state_tensors(), what + " state_tensors");
        if (step == 2) {  // a logged step in the middle
          size_t replayed = 0;
          qb->sync_for_logging([&](const quant::QatController& q) {
            EXPECT_EQ(counts_of(q), host_counts[replayed]) << what << " replayed " << replayed;
            EXPECT_EQ(q.total().tr, host_totals[replayed]);
            ++replayed;
          });
          EXPECT_EQ(replayed, 3u);
          expect_same_state(qb->trs()->state_tensors(), qa->trs()->state_tensors(), what);
        }
      }
      size_t replayed = 0;
      qb->sync_for_logging([&](const quant::QatController& q) {
        EXPECT_EQ(counts_of(q), host_counts[3 + replayed]) << what;
        ++replayed;
      });
      EXPECT_EQ(replayed, 3u);
      EXPECT_EQ(counts_of(*qb), counts_of(*qa));
      int64_t changed = 0;
      for (const auto& l : qa->last()) changed += l.counts.changed;
      EXPECT_GT(changed, 0) << what << ": nothing changed, the test would be weak";
      expect_same_state(qb->trs()->state_tensors(), qa->trs()->state_tensors(), what);
      for (size_t i = 0; i < a.layers.size(); ++i)
        EXPECT_EQ(qb->trs()->talr(i), qa->trs()->talr(i));
      // A sync without pending steps calls nothing.
      qb->sync_for_logging(
          [&](const quant::QatController&) { ADD_FAILURE() << "no step pending"; });
      // load_state reaches the device state.
      TrsController other(qa->trs()->options(), qa->trs()->layer_names());
      qb->load_state(other.state_tensors());
      expect_same_state(qb->state_tensors(), other.state_tensors(), what + " after load_state");
    }
}

// More steps between syncs than the first history allocation holds (64): the history grows
// on the device and every step is replayed in order.
TEST(QatControllerDevicePath, HistoryGrowsAndReplaysEveryStep) {
  Rig a("sgd", Device::cpu()), b("sgd", Device::cpu());
  auto qa = a.controller(TalrRule::multiplicative), qb = b.controller(TalrRule::multiplicative);
  qb->set_force_device_path(true);
  qa->initialise();
  qb->initialise();
  std::vector<std::vector<std::vector<int64_t>>> host_counts;
  const int64_t steps = 150;
  for (int64_t step = 0; step < steps; ++step) {
    // Flip the sign of one layer's weights per step: many codes change, differently per step.
    for (Rig* r : {&a, &b}) {
      const Tensor w = r->layers[static_cast<size_t>(step) % r->layers.size()].second->weight();
      std::vector<float> v = w.to_vector<float>();
      for (float& x : v) x = -x;
      NoGradGuard ng;
      w.copy_(Tensor::from_vector<float>(v, w.shape()));
    }
    qa->after_step(step);
    qb->after_step(step);
    host_counts.push_back(counts_of(*qa));
  }
  size_t replayed = 0;
  qb->sync_for_logging([&](const quant::QatController& q) {
    ASSERT_LT(replayed, host_counts.size());
    EXPECT_EQ(counts_of(q), host_counts[replayed]) << "step " << replayed;
    ++replayed;
  });
  EXPECT_EQ(replayed, static_cast<size_t>(steps));
  EXPECT_GT(host_counts[1][1][1], 0);
  expect_same_state(qb->trs()->state_tensors(), qa->trs()->state_tensors(), "after 150 steps");
}

TEST(QatControllerDevicePath, HostPathIsUntouchedWithoutForcing) {
  Rig a("sgd", Device::cpu());
  auto qa = a.controller(TalrRule::multiplicative);
  qa->initialise();
  a.backward();
  qa->before_step(*a.opt);
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const auto& g = a.opt->param_groups()[a.groups[i]];
    EXPECT_FALSE(g.lr_table.defined());
    EXPECT_EQ(g.lr, 0.5);
  }
  a.opt->step();
  qa->after_step(0);
  EXPECT_EQ(qa->trs()->updates(), 1);  // updated at once, no sync needed
  qa->sync_for_logging([](const quant::QatController&) { ADD_FAILURE() << "host path"; });
}

// ---------------------------------------------------------------------------------------------
// CUDA against the CPU

TEST(CudaTrsDevice, TransitionIntoEqualsCpu) {
  TRANQ_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64})
    for (int bits : {1, 2, 4, 8}) {
      const QuantRange r = kernels::weight_range(bits);
      PassInput a = pass_input(dt, 8, 5000, 30 + bits);
      PassInput c{a.w.to(Device::cuda()), a.scale.to(Device::cuda()), a.codes.to(Device::cuda()),
                  a.prev.to(Device::cuda())};
      Tensor ta = Tensor::zeros({2, 4}, DType::i64);
      Tensor tc = Tensor::full({2, 4}, 99.0, DType::i64).to(Device::cuda());
      kernels::weight_transition_init_into(a.w, a.scale, r, a.codes, a.prev, 0.1, ta, 1);
      kernels::weight_transition_init_into(c.w, c.scale, r, c.codes, c.prev, 0.1, tc, 1);
      EXPECT_TRUE(bits_equal(ta.narrow(0, 1, 1), tc.narrow(0, 1, 1)));
      for (int step = 0; step < 3; ++step) {
        nudge(a.w, 200 + step);
        c.w.copy_(a.w);
        kernels::weight_transition_pass_into(a.w, a.scale, r, a.codes, a.prev, 0.1, ta, 0);
        kernels::weight_transition_pass_into(c.w, c.scale, r, c.codes, c.prev, 0.1, tc, 0);
        EXPECT_TRUE(bits_equal(ta.narrow(0, 0, 1), tc.narrow(0, 0, 1)))
            << dtype_name(dt) << " bits " << bits << " step " << step;
        EXPECT_TRUE(bits_equal(a.codes, c.codes));
        EXPECT_TRUE(bits_equal(a.prev, c.prev));
      }
    }
}

TEST(CudaTrsDevice, TransitionIntoReportsABadScaleInTheRow) {
  TRANQ_REQUIRE_CUDA();
  const QuantRange r = kernels::weight_range(2);
  PassInput a = pass_input(DType::f32, 4, 100, 5);
  std::vector<float> s = a.scale.to_vector<float>();
  s[1] = 0.0f;
  s[3] = NAN;
  PassInput c{a.w.to(Device::cuda()), Tensor::from_vector<float>(s, {4}).to(Device::cuda()),
              a.codes.to(Device::cuda()), a.prev.to(Device::cuda())};
  Tensor tc = Tensor::zeros({1, 4}, DType::i64, Device::cuda());
  kernels::weight_transition_pass_into(c.w, c.scale, r, c.codes, c.prev, 0.1, tc, 0);  // no throw
  EXPECT_EQ(tc.to(Device::cpu()).to_vector<int64_t>(), (std::vector<int64_t>{400, -2, 0, 0}));
  EXPECT_TRUE(bits_equal(c.codes, a.codes));  // untouched
  EXPECT_TRUE(bits_equal(c.prev, a.prev));
}

TEST(CudaTrsDevice, TrsUpdateMatchesCpu) {
  TRANQ_REQUIRE_CUDA();
  // nvcc may contract m*K + (1-m)*k differently from the host compiler (which contracts too,
  // under -march=native, and trs.cpp cannot change): a few ulp per step, relative 1e-12 after
  // 50 steps leaves a wide margin (ulp is 2.2e-16) while any formula slip would be far off.
  for (const RuleCase& rc : kRules) {
    TrsController ref(cosine_opts(rc.rule, rc.momentum, rc.gain), layer_names());
    State h(ref), d(ref, Device::cuda());
    for (int64_t step = 0; step < 50; ++step) {
      Tensor c = counts_table(step);
      if (step == 20) c.data<int64_t>()[1 * 4 + 1] = -1;
      const kernels::TrsStep p = step_of(ref, step);
      h.update(c, p);
      d.update(c.to(Device::cuda()), p);
    }
    test::expect_close(d.K, h.K, 1e-12, "K");
    test::expect_close(d.s, h.s, 1e-12, "s");
    test::expect_close(d.U, h.U, 1e-12, "U");
    test::expect_close(d.k, h.k, 1e-12, "k");
    EXPECT_TRUE(bits_equal(d.bad, h.bad));
    EXPECT_EQ(h.bad.to_vector<int64_t>(), (std::vector<int64_t>{0, 21, 0, 0}));
  }
}

TEST(CudaTrsDevice, MultiUpdateTableMatchesCpuAndHostLrs) {
  TRANQ_REQUIRE_CUDA();
  const Tensor table = Tensor::from_vector<double>(kTable, {5});
  const Tensor ctable = table.to(Device::cuda());
  auto to_dev = [](const MultiSet& m) {
    MultiSet c;
    for (size_t i = 0; i < m.p.size(); ++i) {
      c.p.push_back(m.p[i].to(Device::cuda()));
      c.g.push_back(m.g[i].to(Device::cuda()));
      c.b1.push_back(m.b1[i].to(Device::cuda()));
      c.b2.push_back(m.b2[i].to(Device::cuda()));
    }
    return c;
  };
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = 16 * (dt == DType::f32 ? 0x1p-23 : 0x1p-52);
    {
      MultiSet h = multi_set(dt, 50), c = to_dev(h), l = to_dev(h);
      for (int step = 0; step < 3; ++step) {
        kernels::multi_sgd_update(h.p, h.g, h.b1, table, kIndex, 0.9, 0.0, 1e-2, false, step == 0);
        kernels::multi_sgd_update(c.p, c.g, c.b1, ctable, kIndex, 0.9, 0.0, 1e-2, false, step == 0);
        kernels::multi_sgd_update(l.p, l.g, l.b1, table_lrs(), 0.9, 0.0, 1e-2, false, step == 0);
      }
      for (size_t i = 0; i < h.p.size(); ++i) {
        test::expect_close(c.p[i], h.p[i], tol, "sgd param");
        EXPECT_TRUE(bits_equal(c.p[i], l.p[i])) << "sgd: table and host lrs on CUDA, " << i;
      }
    }
    for (bool decoupled : {false, true}) {
      MultiSet h = multi_set(dt, 60), c = to_dev(h), l = to_dev(h);
      for (int64_t step = 1; step <= 3; ++step) {
        const std::vector<int64_t> steps = {step, step, step + 2, step};
        kernels::multi_adam_update(h.p, h.g, h.b1, h.b2, table, kIndex, 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
        kernels::multi_adam_update(c.p, c.g, c.b1, c.b2, ctable, kIndex, 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
        kernels::multi_adam_update(l.p, l.g, l.b1, l.b2, table_lrs(), 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
      }
      for (size_t i = 0; i < h.p.size(); ++i) {
        test::expect_close(c.p[i], h.p[i], tol, "adam param");
        EXPECT_TRUE(bits_equal(c.p[i], l.p[i])) << "adam: table and host lrs on CUDA, " << i;
        EXPECT_TRUE(bits_equal(c.b2[i], l.b2[i]));
      }
    }
  }
  // A CPU table with CUDA params is refused.
  MultiSet c = to_dev(multi_set(DType::f32, 70));
  EXPECT_THROW(kernels::multi_sgd_update(c.p, c.g, {}, table, kIndex, 0.0, 0.0, 0.0, false, true),
               ValueError);
}

TEST(CudaTrsDevice, QatControllerStepMatchesCpu) {
  TRANQ_REQUIRE_CUDA();
  for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
    Rig a("sgd", Device::cpu()), b("sgd", Device::cuda());
    auto qa = a.controller(rule), qb = b.controller(rule);
    EXPECT_FALSE(qa->deferred());
    EXPECT_TRUE(qb->deferred());
    qa->initialise();
    qb->initialise();
    for (int64_t step = 0; step < 4; ++step) {
      // The same gradients on both (the convolutions differ in the last bits otherwise).
      a.backward();
      b.opt->zero_grad();
      for (size_t gi = 0; gi < a.opt->param_groups().size(); ++gi)
        for (size_t i = 0; i < a.opt->param_groups()[gi].params.size(); ++i) {
          const Tensor& g = a.opt->param_groups()[gi].params[i].grad();
          if (g.defined()) b.opt->param_groups()[gi].params[i].set_grad(g.to(Device::cuda()));
        }
      qa->before_step(*a.opt);
      qb->before_step(*b.opt);
      a.opt->step();
      b.opt->step();
      // The CUDA update (TALR from the device table) against the CPU one: within the optimizer
      // kernels' tolerance; then the same weights on both, so codes and counts must be equal.
      for (size_t i = 0; i < a.layers.size(); ++i) {
        test::expect_close(b.layers[i].second->weight(), a.layers[i].second->weight(), 1e-5,
                           "weight after the step");
        b.layers[i].second->weight().copy_(a.layers[i].second->weight().to(Device::cuda()));
      }
      qa->after_step(step);
      qb->after_step(step);
      for (size_t i = 0; i < a.layers.size(); ++i) {
        ASSERT_TRUE(bits_equal(a.layers[i].second->codes(), b.layers[i].second->codes()))
            << "step " << step << " layer " << i;
        ASSERT_TRUE(bits_equal(a.layers[i].second->prev_codes(), b.layers[i].second->prev_codes()));
      }
    }
    std::vector<std::vector<std::vector<int64_t>>> replay;
    qb->sync_for_logging([&](const quant::QatController& q) { replay.push_back(counts_of(q)); });
    ASSERT_EQ(replay.size(), 4u);
    EXPECT_EQ(replay.back(), counts_of(*qa));
    for (size_t i = 0; i < a.layers.size(); ++i) {
      EXPECT_NEAR(qb->trs()->talr(i), qa->trs()->talr(i), 1e-12 * std::fabs(qa->trs()->talr(i)));
      EXPECT_NEAR(qb->trs()->ema(i), qa->trs()->ema(i),
                  1e-12 * std::fabs(qa->trs()->ema(i)) + 1e-300);
    }
  }
}
