// QAT layers and model transform: QConv2d/QLinear against the float op applied to inputs and
// weights fake-quantized by a scalar reference written here, weight sharing and state-dict
// layout, scale initialisation, activation calibration, quantize_model on resnet20 and the
// integer mode an exported model runs in. The QAT controller is in test_qat_controller.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "gradcheck.h"
#include "quant_reference.h"
#include "kernels/quantize.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "models/registry.h"
#include "quant/fake_quantize.h"
#include "quant/qlayers.h"
#include "quant/transform.h"

using namespace tranq;
using kernels::QuantRange;
using quant::QConv2d;
using quant::QLinear;
using quant::QuantizedLayer;
using quant::QuantSpec;
using quant::ScaleInit;

namespace {

// t = x * (g/|s|) evaluated in float, as the layers compute it; then clip and round.
int ref_code(float x, float s, const QuantRange& r) {
  return test::ref_code(static_cast<double>(x * (r.g / std::fabs(s))), r);
}

// Codes of an f32 tensor with scale [1] or [size(0)] along dim 0.
std::vector<int8_t> ref_codes(const Tensor& x, const Tensor& scale, const QuantRange& r) {
  auto v = x.contiguous().to_vector<float>();
  auto s = scale.contiguous().to_vector<float>();
  const int64_t per = x.numel() / static_cast<int64_t>(s.size());
  std::vector<int8_t> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(static_cast<int8_t>(ref_code(v[i], s[i / per], r)));
  return out;
}

// value = code / g.
Tensor ref_fake_quant(const Tensor& x, const Tensor& scale, const QuantRange& r) {
  auto codes = ref_codes(x, scale, r);
  std::vector<float> v;
  for (int8_t c : codes) v.push_back(static_cast<float>(c) / r.g);
  return Tensor::from_vector(v, x.shape());
}

using test::bitwise_equal;

QuantSpec spec_of(int wbits, int abits, bool per_channel, bool learn = true,
                  ScaleInit init = ScaleInit::three_std) {
  QuantSpec s;
  s.weight_bits = wbits;
  s.act_bits = abits;
  s.per_channel = per_channel;
  s.learn_weight_scale = learn;
  s.scale_init = init;
  return s;
}

// Distinct scales per channel, one of them negative (the quantizer uses |s|).
std::vector<float> test_scales(int64_t n, bool per_channel) {
  if (!per_channel) return {-0.15f};
  std::vector<float> s;
  for (int64_t i = 0; i < n; ++i)
    s.push_back((i % 2 ? -1.0f : 1.0f) * (0.1f + 0.05f * static_cast<float>(i)));
  return s;
}

std::set<float> value_set(const Tensor& t) {
  auto v = t.contiguous().to_vector<float>();
  return std::set<float>(v.begin(), v.end());
}

std::vector<float> as_floats(const Tensor& t) {
  return t.contiguous().to_vector<float>();
}

struct Bits {
  int w, a;
};

// ---------------------------------------------------------------------------------------------
// Forward equals the float op on reference-quantized input and weight.

class QLayerForward : public ::testing::TestWithParam<std::tuple<Bits, bool>> {};

TEST_P(QLayerForward, ConvMatchesFloatConvOfReferenceFakeQuant) {
  const auto [bits, per_channel] = GetParam();
  Conv2d fp(3, 4, 3, /*stride=*/2, /*padding=*/1, 1, 1, /*bias=*/true, DType::f32, 7);
  QConv2d q(fp, spec_of(bits.w, bits.a, per_channel));
  const auto scales = test_scales(4, per_channel);
  q.weight_scale().copy_(Tensor::from_vector(scales, {static_cast<int64_t>(scales.size())}));
  q.act_scale().fill_(1.7);
  // Inputs below 0 and above the clip range (t = 4x/1.7 up to ~5.9 for 2 bits).
  Tensor x = test::random_tensor({2, 3, 5, 5}, 11, -0.5, 2.5, DType::f32);

  const QuantRange wr = kernels::weight_range(bits.w), ar = kernels::activation_range(bits.a);
  Tensor xq = ref_fake_quant(x, Tensor::full({1}, 1.7), ar);
  Tensor wq = ref_fake_quant(fp.weight(), q.weight_scale(), wr);
  if (bits.w == 1) {
    EXPECT_EQ(value_set(wq), (std::set<float>{-1.0f, 1.0f}));
    EXPECT_EQ(value_set(xq), (std::set<float>{0.0f, 0.5f}));
  } else {
    EXPECT_EQ(value_set(wq), (std::set<float>{-1.0f, -0.5f, 0.0f, 0.5f}));
    EXPECT_EQ(value_set(xq), (std::set<float>{0.0f, 0.25f, 0.5f, 0.75f}));
  }
  Tensor expected;
  {
    NoGradGuard ng;
    expected = ops::conv2d(xq, wq, fp.bias(), fp.conv_params());
  }
  Tensor y = q(x);
  ASSERT_EQ(y.shape(), (Shape{2, 4, 3, 3}));
  EXPECT_TRUE(bitwise_equal(y, expected));
  // The float conv differs, so the comparison above is not vacuous.
  EXPECT_FALSE(bitwise_equal(y, fp(x)));
}

TEST_P(QLayerForward, LinearMatchesFloatLinearOfReferenceFakeQuant) {
  const auto [bits, per_channel] = GetParam();
  Linear fp(6, 5, true, DType::f32, 3);
  QLinear q(fp, spec_of(bits.w, bits.a, per_channel));
  const auto scales = test_scales(5, per_channel);
  q.weight_scale().copy_(Tensor::from_vector(scales, {static_cast<int64_t>(scales.size())}));
  q.act_scale().fill_(-1.3);  // |s| is used for activations too
  Tensor x = test::random_tensor({4, 6}, 12, -0.5, 2.0, DType::f32);
  Tensor expected;
  {
    NoGradGuard ng;
    expected = ops::linear(
        ref_fake_quant(x, Tensor::full({1}, 1.3), kernels::activation_range(bits.a)),
        ref_fake_quant(fp.weight(), q.weight_scale(), kernels::weight_range(bits.w)), fp.bias());
  }
  Tensor y = q(x);
  ASSERT_EQ(y.shape(), (Shape{4, 5}));
  EXPECT_TRUE(bitwise_equal(y, expected));
  EXPECT_FALSE(bitwise_equal(y, fp(x)));
}

INSTANTIATE_TEST_SUITE_P(Bits, QLayerForward,
                         ::testing::Combine(::testing::Values(Bits{2, 2}, Bits{1, 1}),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           const Bits b = std::get<0>(info.param);
                           return "W" + std::to_string(b.w) + "A" + std::to_string(b.a) +
                                  (std::get<1>(info.param) ? "_per_channel" : "_per_tensor");
                         });

TEST(QLayer, UnquantizedInputPassesThrough) {
  Conv2d fp(2, 3, 3, 1, 1, 1, 1, false, DType::f32, 5);
  QConv2d q(fp, spec_of(8, 0, false));
  EXPECT_FALSE(q.act_scale().defined());
  Tensor x = test::random_tensor({1, 2, 4, 4}, 13, -3.0, 3.0, DType::f32);
  Tensor expected;
  {
    NoGradGuard ng;
    expected =
        ops::conv2d(x, ref_fake_quant(fp.weight(), q.weight_scale(), kernels::weight_range(8)),
                    Tensor(), fp.conv_params());
  }
  EXPECT_TRUE(bitwise_equal(q(x), expected));
}

TEST(QLayer, RejectsWrongInputShapeAndBits) {
  Conv2d conv(3, 4, 3);
  QConv2d q(conv, spec_of(2, 2, false));
  EXPECT_THROW(q(Tensor::zeros({1, 2, 5, 5})), ValueError);
  Linear lin(6, 5);
  QLinear ql(lin, spec_of(2, 2, false));
  EXPECT_THROW(ql(Tensor::zeros({1, 7})), ValueError);
  EXPECT_THROW(QConv2d(conv, spec_of(9, 2, false)), ValueError);
  EXPECT_THROW(QConv2d(conv, spec_of(2, 9, false)), ValueError);
  EXPECT_THROW(quant::parse_scale_init("4std"), ValueError);
  EXPECT_EQ(quant::parse_scale_init("lsq"), ScaleInit::lsq);
  EXPECT_EQ(quant::parse_scale_init("3std"), ScaleInit::three_std);
}

// A drop-in for Conv2d/Linear: strided (non-contiguous) inputs work as they do there, and the
// gradient reaches them.
TEST(QLayer, NonContiguousInput) {
  Conv2d fp(3, 4, 3, 1, 1, 1, 1, true, DType::f32, 7);
  QConv2d q(fp, spec_of(2, 2, false));
  q.act_scale().fill_(1.1);
  Tensor xt = test::random_tensor({2, 3, 5, 5}, 14, -0.5, 2.0, DType::f32).transpose(2, 3);
  xt.set_requires_grad(true);  // a strided leaf
  ASSERT_FALSE(xt.is_contiguous());
  Tensor y = q(xt);
  EXPECT_TRUE(bitwise_equal(y, q(xt.contiguous())));
  ops::sum(y).backward();
  ASSERT_TRUE(xt.grad().defined());
  auto g = xt.grad().contiguous().to_vector<float>();
  EXPECT_TRUE(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.0f; }));
  Tensor xc = xt.detach().contiguous();
  xc.set_requires_grad(true);
  ops::sum(q(xc)).backward();
  EXPECT_TRUE(bitwise_equal(xt.grad(), xc.grad()));

  Linear lin(5, 3, true, DType::f32, 3);
  QLinear ql(lin, spec_of(2, 2, true));
  Tensor a = test::random_tensor({5, 4}, 15, -0.5, 2.0, DType::f32);
  EXPECT_TRUE(bitwise_equal(ql(a.transpose(0, 1)), ql(a.transpose(0, 1).contiguous())));
}

// spec.lsq_grad_scale multiplies each scale's gradient by 1/sqrt(N*Qp) (N elements per scale,
// Qp = hi), for the weight and the activation scale, and leaves the other gradients alone.
TEST(QLayer, LsqGradScaleIsApplied) {
  for (bool pc : {false, true}) {
    auto grads = [&](bool lsq) {
      Linear fp(6, 5, true, DType::f32, 3);
      QuantSpec spec = spec_of(4, 2, pc);
      spec.lsq_grad_scale = lsq;
      QLinear q(fp, spec);
      q.act_scale().fill_(1.3);
      Tensor y = q(test::random_tensor({4, 6}, 16, -0.5, 2.0, DType::f32));
      ops::sum(ops::mul(y, test::random_tensor(y.shape(), 17, -1, 1, DType::f32))).backward();
      return std::vector<Tensor>{q.weight_scale().grad(), q.act_scale().grad(), q.weight().grad()};
    };
    auto plain = grads(false), lsq = grads(true);
    const double fw = 1.0 / std::sqrt((pc ? 6.0 : 30.0) * 7.0), fa = 1.0 / std::sqrt(24.0 * 3.0);
    auto ws = as_floats(plain[0]), wl = as_floats(lsq[0]);
    for (size_t i = 0; i < ws.size(); ++i) {
      ASSERT_NE(ws[i], 0.0f);
      EXPECT_NEAR(wl[i], ws[i] * fw, 1e-6 * std::fabs(ws[i])) << "weight scale " << i;
    }
    ASSERT_NE(as_floats(plain[1])[0], 0.0f);
    EXPECT_NEAR(as_floats(lsq[1])[0], as_floats(plain[1])[0] * fa,
                1e-6 * std::fabs(as_floats(plain[1])[0]));
    EXPECT_TRUE(bitwise_equal(plain[2], lsq[2]));
  }
}

// ---------------------------------------------------------------------------------------------
// Sharing and state dict.

std::vector<std::string> names_of(const NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

TEST(QLayer, SharesTheFloatWeightAndBias) {
  Conv2d fp(3, 4, 3, 1, 1, 1, 1, true, DType::f32, 2);
  QConv2d q(fp, spec_of(2, 2, true));
  EXPECT_TRUE(q.weight().same_as(fp.weight()));
  EXPECT_EQ(q.weight().storage(), fp.weight().storage());
  auto sd = q.state_dict();
  EXPECT_EQ(sd[1].second.storage(), fp.bias().storage());
  // A write through the float layer is what the quantized layer computes with.
  fp.weight().fill_(0.25);
  EXPECT_EQ(q.weight().contiguous().to_vector<float>()[0], 0.25f);

  Linear lin(6, 5, true, DType::f32, 1);
  QLinear ql(lin, spec_of(2, 2, false));
  EXPECT_TRUE(ql.weight().same_as(lin.weight()));
  EXPECT_EQ(ql.state_dict()[1].second.storage(), lin.bias().storage());
}

TEST(QLayer, StateDictLayoutLearnableScale) {
  Conv2d fp(3, 4, 3, 1, 1, 1, 1, true, DType::f32, 2);
  QConv2d q(fp, spec_of(2, 2, true, /*learn=*/true));
  auto sd = q.state_dict();
  EXPECT_EQ(names_of(sd), (std::vector<std::string>{"weight", "bias", "weight_scale", "act_scale",
                                                    "weight_codes", "weight_prev_codes"}));
  EXPECT_EQ(sd[2].second.shape(), (Shape{4}));
  EXPECT_EQ(sd[3].second.shape(), (Shape{1}));
  EXPECT_EQ(sd[4].second.dtype(), DType::i8);
  EXPECT_EQ(sd[5].second.dtype(), DType::i8);
  EXPECT_EQ(sd[4].second.shape(), fp.weight().shape());
  EXPECT_EQ(sd[5].second.shape(), fp.weight().shape());
  EXPECT_EQ(names_of(q.named_parameters()),
            (std::vector<std::string>{"weight", "bias", "weight_scale", "act_scale"}));
  EXPECT_TRUE(q.weight_scale().requires_grad());
  EXPECT_TRUE(q.act_scale().requires_grad());
  EXPECT_FALSE(q.codes().requires_grad());

  Conv2d nobias(3, 4, 3, 1, 1, 1, 1, false);
  QConv2d qn(nobias, spec_of(2, 2, false));
  EXPECT_EQ(names_of(qn.state_dict()),
            (std::vector<std::string>{"weight", "weight_scale", "act_scale", "weight_codes",
                                      "weight_prev_codes"}));
  EXPECT_EQ(qn.weight_scale().shape(), (Shape{1}));
}

TEST(QLayer, FrozenWeightScaleIsABuffer) {
  Linear fp(6, 5, true, DType::f32, 1);
  QLinear q(fp, spec_of(2, 2, false, /*learn=*/false));
  // Parameters first, then buffers (PyTorch's state-dict order), so the frozen scale moves
  // behind act_scale; loading is by name, so this layout and the learnable one interchange.
  EXPECT_EQ(names_of(q.state_dict()),
            (std::vector<std::string>{"weight", "bias", "act_scale", "weight_scale", "weight_codes",
                                      "weight_prev_codes"}));
  EXPECT_EQ(names_of(q.named_parameters()),
            (std::vector<std::string>{"weight", "bias", "act_scale"}));
  for (const Tensor& p : q.parameters()) EXPECT_FALSE(p.same_as(q.weight_scale()));
  EXPECT_EQ(names_of(q.named_buffers()),
            (std::vector<std::string>{"weight_scale", "weight_codes", "weight_prev_codes"}));
  EXPECT_FALSE(q.weight_scale().requires_grad());
}

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

// ---------------------------------------------------------------------------------------------
// quantize_model on resnet20.

constexpr int64_t kClasses = 10;

std::vector<std::string> conv_names(Module& m) {
  std::vector<std::string> out;
  for (auto& [n, mod] : m.named_modules())
    if (dynamic_cast<Conv2d*>(mod)) out.push_back(n);
  return out;
}

TEST(QuantizeModel, Resnet20KeepsFirstAndLastFloatByDefault) {
  auto model = create_model("resnet20", 1, kClasses, 3);
  const auto convs = conv_names(*model);
  // conv1 + 3 stages x 3 blocks x 2 convs + the two projection shortcuts.
  ASSERT_EQ(convs.size(), 21u);
  ASSERT_EQ(convs.front(), "conv1");
  std::map<std::string, std::shared_ptr<Buffer>> storage;
  for (auto& [n, t] : model->named_parameters()) storage[n] = t.storage();
  const auto fp_names = names_of(model->state_dict());

  quant::QuantizeOptions opt;
  opt.spec = spec_of(2, 2, false);
  const auto done = quant::quantize_model(*model, opt);
  const std::vector<std::string> expected(convs.begin() + 1, convs.end());
  EXPECT_EQ(done, expected);
  EXPECT_NE(std::find(done.begin(), done.end(), "layer2.0.downsample.0"), done.end());
  EXPECT_NE(std::find(done.begin(), done.end(), "layer3.0.downsample.0"), done.end());

  auto layers = quant::quantized_layers(*model);
  ASSERT_EQ(layers.size(), done.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(layers[i].first, done[i]);
    EXPECT_NE(dynamic_cast<QConv2d*>(layers[i].second), nullptr) << done[i];
    EXPECT_EQ(layers[i].second->spec().weight_bits, 2);
    EXPECT_EQ(layers[i].second->spec().act_bits, 2);
    // The latent weight is the float model's tensor.
    EXPECT_EQ(layers[i].second->weight().storage(), storage.at(done[i] + ".weight")) << done[i];
  }
  std::map<std::string, Module*> mods;
  for (auto& [n, m] : model->named_modules()) mods[n] = m;
  EXPECT_NE(dynamic_cast<Conv2d*>(mods.at("conv1")), nullptr);
  EXPECT_NE(dynamic_cast<Linear*>(mods.at("fc")), nullptr);
  EXPECT_TRUE(conv_names(*model) == std::vector<std::string>{"conv1"});

  // The float model's state dict names survive in order; the quantizer adds its own.
  std::vector<std::string> kept;
  for (auto& n : names_of(model->state_dict()))
    if (n.find("_scale") == std::string::npos && n.find("_codes") == std::string::npos)
      kept.push_back(n);
  EXPECT_EQ(kept, fp_names);

  // Forward still runs.
  Tensor y = (*model)(test::random_tensor({2, 1, 8, 8}, 5, -1, 1, DType::f32));
  EXPECT_EQ(y.shape(), (Shape{2, kClasses}));
  for (float v : y.contiguous().to_vector<float>()) EXPECT_TRUE(std::isfinite(v));
}

TEST(QuantizeModel, FirstLastBits8) {
  auto model = create_model("resnet20", 1, kClasses, 3);
  model->eval();
  quant::QuantizeOptions opt;
  opt.spec = spec_of(2, 2, true);
  opt.first_last_bits = 8;
  const auto done = quant::quantize_model(*model, opt);
  ASSERT_EQ(done.size(), 22u);
  EXPECT_EQ(done.front(), "conv1");
  EXPECT_EQ(done.back(), "fc");
  auto layers = quant::quantized_layers(*model);
  auto* c1 = dynamic_cast<QConv2d*>(layers.front().second);
  auto* fc = dynamic_cast<QLinear*>(layers.back().second);
  ASSERT_NE(c1, nullptr);
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(c1->spec().weight_bits, 8);
  EXPECT_EQ(c1->spec().act_bits, 0);
  EXPECT_FALSE(c1->act_scale().defined());
  EXPECT_TRUE(c1->spec().per_channel);
  EXPECT_EQ(fc->spec().weight_bits, 8);
  EXPECT_EQ(fc->spec().act_bits, 8);
  EXPECT_TRUE(fc->act_scale().defined());
  for (size_t i = 1; i + 1 < layers.size(); ++i) {
    EXPECT_EQ(layers[i].second->spec().weight_bits, 2);
    EXPECT_EQ(layers[i].second->spec().act_bits, 2);
  }
  // The new layers take the model's mode.
  for (auto& [n, q] : layers) EXPECT_FALSE(q->is_training()) << n;
  auto sd = names_of(model->state_dict());
  EXPECT_EQ(std::count(sd.begin(), sd.end(), "conv1.act_scale"), 0);
  EXPECT_EQ(std::count(sd.begin(), sd.end(), "fc.act_scale"), 1);
  EXPECT_TRUE(conv_names(*model).empty());
}

// Only the LAST linear layer stays float; an earlier one is quantized.
TEST(QuantizeModel, OnlyTheLastLinearStaysFloat) {
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Conv2d>(1, 2, 3, 1, 1));
  m->push_back(std::make_shared<Conv2d>(2, 2, 3, 1, 1));
  m->push_back(std::make_shared<Flatten>());
  m->push_back(std::make_shared<Linear>(32, 8));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Linear>(8, 3));
  quant::QuantizeOptions opt;
  opt.spec = spec_of(2, 2, false);
  EXPECT_EQ(quant::quantize_model(*m, opt), (std::vector<std::string>{"1", "3"}));
  EXPECT_NE(dynamic_cast<Conv2d*>(m->at(0).get()), nullptr);
  EXPECT_NE(dynamic_cast<QConv2d*>(m->at(1).get()), nullptr);
  EXPECT_NE(dynamic_cast<QLinear*>(m->at(3).get()), nullptr);
  EXPECT_NE(dynamic_cast<Linear*>(m->at(5).get()), nullptr);
  EXPECT_EQ((*m)(Tensor::ones({2, 1, 4, 4})).shape(), (Shape{2, 3}));
}

void expect_some_nonzero(const Tensor& g, const std::string& what) {
  ASSERT_TRUE(g.defined()) << what << " got no gradient";
  auto v = g.contiguous().to_vector<float>();
  EXPECT_TRUE(std::any_of(v.begin(), v.end(), [](float x) { return x != 0.0f; }))
      << what << " gradient is zero";
}

class QuantizeModelGrad : public ::testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(QuantizeModelGrad, GradientsReachWeightsAndScales) {
  const auto [learn, first_last] = GetParam();
  auto model = create_model("resnet20", 1, kClasses, 4);
  quant::QuantizeOptions opt;
  opt.spec = spec_of(2, 2, false, learn);
  opt.first_last_bits = first_last;
  quant::quantize_model(*model, opt);
  Tensor x = test::random_tensor({3, 1, 8, 8}, 6, -1, 1, DType::f32);
  quant::calibrate_activation_scales(*model, x);
  Tensor y = (*model)(x);
  ops::sum(ops::mul(y, test::random_tensor(y.shape(), 7, -1, 1, DType::f32))).backward();
  for (auto& [n, q] : quant::quantized_layers(*model)) {
    expect_some_nonzero(q->weight().grad(), n + ".weight");
    if (q->act_scale().defined()) expect_some_nonzero(q->act_scale().grad(), n + ".act_scale");
    if (learn) {
      expect_some_nonzero(q->weight_scale().grad(), n + ".weight_scale");
    } else {
      EXPECT_FALSE(q->weight_scale().requires_grad()) << n;
      EXPECT_FALSE(q->weight_scale().grad().defined()) << n;
    }
  }
  for (auto& [n, p] : model->named_parameters()) EXPECT_TRUE(p.grad().defined()) << n;
}

INSTANTIATE_TEST_SUITE_P(Variants, QuantizeModelGrad,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(0, 8)));

// ---------------------------------------------------------------------------------------------
// Integer mode: what an exported model computes with.

// A state dict as export writes it: the fresh codes instead of the latent quantized weights and
// their previous codes.
NamedTensors integer_dict(Module& model, std::vector<std::string>* dropped) {
  std::map<std::string, Tensor> codes;
  std::set<std::string> skip;
  for (auto& [n, q] : quant::quantized_layers(model)) {
    codes[n + ".weight_codes"] = q->compute_codes();
    skip.insert(n + ".weight");
    skip.insert(n + ".weight_prev_codes");
  }
  NamedTensors out;
  for (auto& [n, t] : model.state_dict()) {
    if (skip.count(n)) {
      dropped->push_back(n);
      continue;
    }
    auto c = codes.find(n);
    out.emplace_back(n, c == codes.end() ? t : c->second);
  }
  return out;
}

class IntegerMode : public ::testing::TestWithParam<std::tuple<Bits, bool, int>> {};

TEST_P(IntegerMode, CodesAndOutputsMatchFakeQuant) {
  const auto [bits, per_channel, first_last] = GetParam();
  quant::QuantizeOptions opt;
  opt.spec = spec_of(bits.w, bits.a, per_channel);
  opt.first_last_bits = first_last;
  auto model = create_model("resnet20", 1, kClasses, 8);
  quant::quantize_model(*model, opt);
  Tensor x = test::random_tensor({2, 1, 8, 8}, 9, -1, 1, DType::f32);
  quant::calibrate_activation_scales(*model, x);
  // Move the latent weights off the stored codes (which are still the zeros of construction),
  // so only freshly computed codes can match.
  for (auto& [n, q] : quant::quantized_layers(*model)) {
    Tensor w = q->weight();
    w.copy_(ops::add(w, test::random_tensor(w.shape(), 10, -0.05, 0.05, DType::f32)).detach());
  }

  for (auto& [n, q] : quant::quantized_layers(*model)) {
    Tensor codes = q->compute_codes();
    ASSERT_EQ(codes.dtype(), DType::i8);
    ASSERT_EQ(codes.shape(), q->weight().shape());
    // == the codes the fake quantizer emits in the forward pass ...
    Tensor fq_codes = Tensor::zeros(q->weight().shape(), DType::i8);
    {
      NoGradGuard ng;
      quant::fake_quantize(q->weight(), q->weight_scale(), q->weight_range(), false, fq_codes);
    }
    EXPECT_TRUE(bitwise_equal(codes, fq_codes)) << n;
    // ... and the scalar reference.
    EXPECT_EQ(codes.to_vector<int8_t>(),
              ref_codes(q->weight(), q->weight_scale(), q->weight_range()))
        << n;
  }

  std::vector<std::string> dropped;
  NamedTensors dict = integer_dict(*model, &dropped);
  auto fresh = create_model("resnet20", 1, kClasses, 99);  // other latent weights
  quant::quantize_model(*fresh, opt);
  LoadReport r = fresh->load_state_dict(dict, /*strict=*/false);
  EXPECT_EQ(r.missing, dropped);
  EXPECT_TRUE(r.unexpected.empty());
  model->eval();
  fresh->eval();
  Tensor batch = test::random_tensor({3, 1, 8, 8}, 11, -1.5, 1.5, DType::f32);
  Tensor ref = (*model)(batch);
  EXPECT_FALSE(bitwise_equal((*fresh)(batch), ref));  // the latent weights differ
  for (auto& [n, q] : quant::quantized_layers(*fresh)) q->set_integer_mode(true);
  EXPECT_TRUE(bitwise_equal((*fresh)(batch), ref));
}

INSTANTIATE_TEST_SUITE_P(Variants, IntegerMode,
                         ::testing::Values(std::make_tuple(Bits{2, 2}, false, 0),
                                           std::make_tuple(Bits{2, 2}, true, 8),
                                           std::make_tuple(Bits{1, 1}, true, 0),
                                           std::make_tuple(Bits{4, 4}, false, 8)));

}  // namespace
