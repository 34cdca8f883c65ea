// QAT scale initialisation (3*std, LSQ) and activation-scale calibration.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "fake_device.h"
#include "gradcheck.h"
#include "kernels/quantize.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "qat_test_util.h"
#include "quant/qlayers.h"
#include "quant/transform.h"

using namespace tranq;
using kernels::QuantRange;
using quant::QConv2d;
using quant::QLinear;
using quant::QuantizedLayer;
using quant::QuantSpec;
using quant::ScaleInit;
using test::bitwise_equal;
using test::spec_of;

namespace {

// ---------------------------------------------------------------------------------------------
// Scale initialisation.

struct Stats {
  double std, mean_abs;
};
Stats stats_of(const std::vector<double>& v) {
  double s = 0, sa = 0;
  for (double x : v) s += x, sa += std::fabs(x);
  const double mean = s / v.size();
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return {std::sqrt(ss / (v.size() - 1)), sa / v.size()};
}

std::vector<double> as_doubles(const Tensor& t) {
  auto f = t.contiguous().to(DType::f64).to_vector<double>();
  return f;
}

// Per channel (rows of dim 0) or all of it.
std::vector<Stats> row_stats(const Tensor& w, bool per_channel) {
  auto v = as_doubles(w);
  const int64_t rows = per_channel ? w.size(0) : 1, per = w.numel() / rows;
  std::vector<Stats> out;
  for (int64_t r = 0; r < rows; ++r)
    out.push_back(stats_of(std::vector<double>(v.begin() + r * per, v.begin() + (r + 1) * per)));
  return out;
}

void expect_rel_near(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, 2e-6 * std::fabs(expected)) << what;
}

TEST(ScaleInit, WeightThreeStd) {
  for (bool pc : {false, true}) {
    for (int bits : {1, 2, 4}) {
      Conv2d fp(3, 4, 3, 1, 1, 1, 1, true, DType::f32, 21);
      QConv2d q(fp, spec_of(bits, 2, pc));
      auto st = row_stats(fp.weight(), pc);
      auto s = as_doubles(q.weight_scale());
      ASSERT_EQ(s.size(), st.size());
      for (size_t r = 0; r < s.size(); ++r)
        expect_rel_near(s[r], 3.0 * st[r].std,
                        fmt::format("bits {} per_channel {} row {}", bits, pc, r));
    }
  }
  // Per channel really is per channel: scale the second output channel's weights by 10.
  Linear lin(8, 3, true, DType::f32, 4);
  std::vector<float> w = lin.weight().contiguous().to_vector<float>();
  for (int i = 8; i < 16; ++i) w[i] *= 10;
  lin.weight().copy_(Tensor::from_vector(w, {3, 8}));
  QLinear q(lin, spec_of(2, 2, true));
  auto st = row_stats(lin.weight(), true);
  auto s = as_doubles(q.weight_scale());
  for (int r = 0; r < 3; ++r) expect_rel_near(s[r], 3.0 * st[r].std, "linear row");
  EXPECT_GT(s[1], 5 * s[0]);
  // init_weight_scale re-reads the latent weights.
  lin.weight().fill_(0.0);
  lin.weight().narrow(0, 0, 1).narrow(1, 0, 1).fill_(1.0);
  q.init_weight_scale();
  s = as_doubles(q.weight_scale());
  expect_rel_near(s[0], 3.0 * std::sqrt(1.0 / 8.0), "after init_weight_scale");
  EXPECT_GT(s[1], 0.0);  // an all-zero row still gets a usable (positive) scale
}

TEST(ScaleInit, WeightLsq) {
  for (bool pc : {false, true}) {
    for (int bits : {1, 2, 4}) {
      Conv2d fp(3, 4, 3, 1, 1, 1, 1, true, DType::f32, 22);
      QConv2d q(fp, spec_of(bits, 2, pc, true, ScaleInit::lsq));
      const QuantRange r = kernels::weight_range(bits);
      const double qp = bits == 1 ? 1.0 : r.hi;
      auto st = row_stats(fp.weight(), pc);
      auto s = as_doubles(q.weight_scale());
      for (size_t i = 0; i < s.size(); ++i)
        expect_rel_near(s[i], r.g * 2.0 * st[i].mean_abs / std::sqrt(qp),
                        fmt::format("lsq bits {} per_channel {} row {}", bits, pc, i));
    }
  }
}

// Sequential{QConv2d, BN, ReLU, QConv2d}: the first layer sees the batch, the second the
// output of the first three modules.
std::shared_ptr<Sequential> two_layer_model(const QuantSpec& spec) {
  Conv2d c0(2, 4, 3, 1, 1, 1, 1, false, DType::f32, 31),
      c1(4, 3, 3, 1, 1, 1, 1, true, DType::f32, 32);
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<QConv2d>(c0, spec));
  m->push_back(std::make_shared<BatchNorm2d>(4));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<QConv2d>(c1, spec));
  return m;
}

TEST(Calibration, ActivationScaleFromEachLayersInput) {
  const double k = 3.0 / std::sqrt(1.0 - 2.0 / M_PI);
  auto m = two_layer_model(spec_of(2, 2, false));
  auto* q0 = dynamic_cast<QuantizedLayer*>(m->at(0).get());
  auto* q1 = dynamic_cast<QuantizedLayer*>(m->at(3).get());
  auto* bn = dynamic_cast<BatchNorm2d*>(m->at(1).get());
  // Non-trivial running statistics, to see that they come back.
  bn->running_mean().fill_(0.3);
  bn->running_var().fill_(2.0);
  bn->num_batches_tracked().fill_(5);
  m->eval();
  const NamedTensors before = [&] {
    NamedTensors b;
    for (auto& [n, t] : m->named_buffers()) b.emplace_back(n, t.clone());
    return b;
  }();
  const Tensor ws0 = q0->weight_scale().clone();

  Tensor x = test::random_tensor({3, 2, 5, 5}, 41, -1.0, 3.0, DType::f32);
  quant::calibrate_activation_scales(*m, x);

  EXPECT_FALSE(m->is_training());
  EXPECT_FALSE(bn->is_training());
  auto after = m->named_buffers();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_TRUE(bitwise_equal(after[i].second, before[i].second)) << after[i].first;
  EXPECT_TRUE(bitwise_equal(q0->weight_scale(), ws0));

  expect_rel_near(q0->act_scale().item(), k * stats_of(as_doubles(x)).std, "first layer");
  // The second layer's input, recomputed with the calibrated first layer (training mode: BN
  // uses batch statistics, as during calibration).
  Tensor h;
  {
    NoGradGuard ng;
    m->train();
    h = m->at(2)->forward(m->at(1)->forward(m->at(0)->forward(x)));
    m->eval();
  }
  const double s1 = q1->act_scale().item();
  expect_rel_near(s1, k * stats_of(as_doubles(h)).std, "second layer");

  // Calibration is over: another forward leaves the scales alone.
  m->train();
  m->forward(test::random_tensor({3, 2, 5, 5}, 42, -5.0, 5.0, DType::f32));
  EXPECT_EQ(q1->act_scale().item(), s1);
  expect_rel_near(q0->act_scale().item(), k * stats_of(as_doubles(x)).std, "first layer, later");
}

// A forward that fails half way (here in the last layer, after BN has updated its running
// statistics) leaves no calibration mode, mode change or buffer change behind.
TEST(Calibration, FailedForwardLeavesNoTrace) {
  Conv2d c0(2, 4, 3, 1, 1, 1, 1, false, DType::f32, 31);
  Linear l1(4, 3, true, DType::f32, 33);
  QuantSpec spec = spec_of(2, 2, false);
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<QConv2d>(c0, spec));
  m->push_back(std::make_shared<BatchNorm2d>(4));
  m->push_back(std::make_shared<QLinear>(l1, spec));  // rejects the 4-d input
  m->eval();
  NamedTensors before;
  for (auto& [n, t] : m->named_buffers()) before.emplace_back(n, t.clone());
  auto* q0 = dynamic_cast<QuantizedLayer*>(m->at(0).get());
  const double s0 = q0->act_scale().item();

  EXPECT_THROW(quant::calibrate_activation_scales(
                   *m, test::random_tensor({2, 2, 3, 3}, 44, -1, 1, DType::f32)),
               ValueError);
  EXPECT_FALSE(m->is_training());
  EXPECT_FALSE(m->at(1)->is_training());
  auto after = m->named_buffers();
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_TRUE(bitwise_equal(after[i].second, before[i].second)) << after[i].first;
  EXPECT_EQ(q0->act_scale().item(), s0);  // the scales set before the failure are undone too
  // Calibration mode is off again: a forward of the first layer does not move its scale.
  {
    NoGradGuard ng;
    m->at(0)->forward(test::random_tensor({2, 2, 3, 3}, 45, -9, 9, DType::f32));
  }
  EXPECT_EQ(q0->act_scale().item(), s0);
}

TEST(Calibration, KeepsEachModulesMode) {
  auto m = two_layer_model(spec_of(2, 2, false));
  m->train();
  m->at(1)->eval();  // a frozen BN inside a model in training
  m->at(3)->eval();
  quant::calibrate_activation_scales(*m,
                                     test::random_tensor({2, 2, 4, 4}, 46, -1.0, 3.0, DType::f32));
  EXPECT_TRUE(m->is_training());
  EXPECT_TRUE(m->at(0)->is_training());
  EXPECT_FALSE(m->at(1)->is_training());
  EXPECT_TRUE(m->at(2)->is_training());
  EXPECT_FALSE(m->at(3)->is_training());
}

TEST(Calibration, LsqRuleForActivations) {
  auto m = two_layer_model(spec_of(2, 2, false, true, ScaleInit::lsq));
  Tensor x = test::random_tensor({2, 2, 4, 4}, 43, -1.0, 3.0, DType::f32);
  quant::calibrate_activation_scales(*m, x);
  auto* q0 = dynamic_cast<QuantizedLayer*>(m->at(0).get());
  // A2: g = 4, Qp = 3.
  expect_rel_near(q0->act_scale().item(),
                  4.0 * 2.0 * stats_of(as_doubles(x)).mean_abs / std::sqrt(3.0), "lsq activation");
}

}  // namespace

TEST(Calibration, SignedAutoGivesNegativeInputsTheWeightsRange) {
  QuantSpec spec = spec_of(2, 2, false);
  spec.signed_act_auto = true;
  auto m = two_layer_model(spec);
  auto* q0 = dynamic_cast<QuantizedLayer*>(m->at(0).get());
  auto* q1 = dynamic_cast<QuantizedLayer*>(m->at(3).get());
  EXPECT_FALSE(q0->act_signed()) << "unsigned until a calibration says otherwise";
  Tensor x = test::random_tensor({3, 2, 5, 5}, 41, -1.0, 3.0, DType::f32);
  quant::calibrate_activation_scales(*m, x);
  // The image holds negatives: signed codes -2..1 at 2 bits, scaled as a weight (3*std).
  ASSERT_TRUE(q0->act_signed());
  const QuantRange r0 = q0->act_range(), w2 = kernels::weight_range(2);
  EXPECT_EQ(r0.lo, w2.lo);
  EXPECT_EQ(r0.hi, w2.hi);
  EXPECT_EQ(r0.g, w2.g);
  expect_rel_near(q0->act_scale().item(), 3.0 * stats_of(as_doubles(x)).std, "signed input");
  // After BN and ReLU nothing is negative: the method's unsigned range and rule.
  EXPECT_FALSE(q1->act_signed());
  EXPECT_EQ(q1->act_range().lo, 0);

  // The flag is state: a model loading this state dict quantizes the same way.
  auto m2 = two_layer_model(spec);
  auto* r = dynamic_cast<QuantizedLayer*>(m2->at(0).get());
  EXPECT_FALSE(r->act_signed());  // read (and cached) before the load
  m2->load_state_dict(m->state_dict());
  EXPECT_TRUE(r->act_signed());
  EXPECT_FALSE(dynamic_cast<QuantizedLayer*>(m2->at(3).get())->act_signed());

  // A negative input inside the signed range passes gradient (the unsigned range clips it
  // to 0 and passes none).
  for (bool signed_auto : {true, false}) {
    QuantSpec s = spec_of(2, 2, false);
    s.signed_act_auto = signed_auto;
    Conv2d c(2, 4, 3, 1, 1, 1, 1, false, DType::f32, 31);
    auto layer = std::make_shared<QConv2d>(c, s);
    quant::calibrate_activation_scales(*layer, x);
    Tensor xi = Tensor::full({1, 2, 5, 5}, -0.3 * layer->act_scale().item() / 2);
    xi.set_requires_grad(true);
    ops::sum(layer->forward(xi)).backward();
    double grad_abs = 0;
    for (float g : xi.grad().to_vector<float>()) grad_abs += std::fabs(g);
    if (signed_auto)
      EXPECT_GT(grad_abs, 0.0);
    else
      EXPECT_EQ(grad_abs, 0.0);
  }
}

// The act_signed flag is cached on the host (a GPU forward must not read it each time); the
// cache must follow a write made while the layer sat on another device, even where the
// allocator hands back an address it used before.
TEST(Calibration, SignedFlagCacheFollowsWritesAcrossDeviceMoves) {
  test::use_fake_cuda_unless_real();
  QuantSpec spec = spec_of(4, 4, false);
  spec.signed_act_auto = true;
  // Read once, then n round trips with a write on the CPU in the first: for some n the last
  // move's storage lands where the cached one was.
  for (int n = 1; n <= 16; ++n) {
    QLinear q(Linear(4, 3, true, DType::f32, 5), spec);
    auto flag = [&] {
      for (auto& [name, t] : q.named_buffers())
        if (name == "act_signed") return t;
      return Tensor();
    };
    q.to(Device::cuda());
    ASSERT_FALSE(q.act_signed());
    for (int i = 0; i < n; ++i) {
      q.to(Device::cpu());
      if (i == 0) flag().fill_(1.0);  // e.g. a state dict loaded on the CPU
      q.to(Device::cuda());
    }
    EXPECT_TRUE(q.act_signed()) << n << " round trips";
    EXPECT_EQ(q.act_range().lo, -8) << n << " round trips";
  }
}
