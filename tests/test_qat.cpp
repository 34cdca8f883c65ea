// QAT layers: QConv2d/QLinear against the float op applied to inputs and weights
// fake-quantized by a scalar reference written here, weight sharing and state-dict layout.
// Scale initialisation and calibration: test_qat_calibration.cpp; quantize_model and the
// integer mode: test_qat_model.cpp; the QAT controller: test_qat_controller.cpp.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "gradcheck.h"
#include "kernels/quantize.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "qat_test_util.h"
#include "quant/qlayers.h"
#include "quant/transform.h"

using namespace tranq;
using kernels::QuantRange;
using quant::QConv2d;
using quant::QLinear;
using quant::QuantSpec;
using quant::ScaleInit;
using test::Bits;
using test::bitwise_equal;
using test::names_of;
using test::ref_codes;
using test::spec_of;

namespace {

// value = code / g.
Tensor ref_fake_quant(const Tensor& x, const Tensor& scale, const QuantRange& r) {
  auto codes = ref_codes(x, scale, r);
  std::vector<float> v;
  for (int8_t c : codes) v.push_back(static_cast<float>(c) / r.g);
  return Tensor::from_vector(v, x.shape());
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
// Output scale: a layer with no BN after it outputs o * op(x_q, W_q) + b, o = |s_w|*|s_a|.

double rel_error(const Tensor& y, const Tensor& ref) {
  auto a = y.contiguous().to(DType::f64).to_vector<double>();
  auto b = ref.contiguous().to(DType::f64).to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

template <class Layer>
void calibrate(Layer& q, const Tensor& x) {
  NoGradGuard ng;
  q.set_calibrating(true);
  q(x);
  q.set_calibrating(false);
}

QuantSpec with_output_scale(QuantSpec s) {
  s.output_scale = true;
  return s;
}

class OutputScale : public ::testing::TestWithParam<bool> {};

TEST_P(OutputScale, LinearStartsAtTheFloatOutput) {
  const bool per_channel = GetParam();
  Linear fp(32, 6, true, DType::f32, 3);
  QLinear q(fp, with_output_scale(spec_of(8, 8, per_channel)));
  ASSERT_TRUE(q.output_scale().defined());
  EXPECT_TRUE(q.output_scale().requires_grad());
  EXPECT_EQ(q.output_scale().shape(), q.weight_scale().shape());
  // Inputs up to 20 make s_a ~ 29 and o = s_w*s_a far from 1, so that a missing output scale
  // would be visible.
  Tensor x = test::random_tensor({4, 32}, 21, 0.0, 20.0, DType::f32);
  calibrate(q, x);
  const auto ws = as_floats(q.weight_scale()), os = as_floats(q.output_scale());
  const float sa = as_floats(q.act_scale())[0];
  ASSERT_EQ(os.size(), per_channel ? 6u : 1u);
  for (size_t j = 0; j < os.size(); ++j) {
    EXPECT_FLOAT_EQ(os[j], static_cast<float>(std::fabs(double(ws[j])) * std::fabs(double(sa))));
    EXPECT_GT(os[j], 3.0f) << "the test needs s_w*s_a far from 1";
  }

  Tensor y = q(x), y_fp = fp(x);
  EXPECT_LT(rel_error(y, y_fp), 0.05);
  // Exactly o * (W_q a_q) + b, against a naive loop over the reference fake quantizer.
  // (8-bit activation codes exceed int8, so ref_codes cannot hold them.)
  std::vector<double> aq;
  for (float v : as_floats(x)) aq.push_back(test::ref_code(v, sa, q.act_range()) / q.act_range().g);
  auto wq = as_floats(ref_fake_quant(fp.weight(), q.weight_scale(), q.weight_range()));
  auto b = as_floats(fp.bias()), yv = as_floats(y);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t j = 0; j < 6; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < 32; ++i) acc += double(wq[j * 32 + i]) * aq[n * 32 + i];
      const double ref = os[per_channel ? j : 0] * acc + b[j];
      EXPECT_NEAR(yv[n * 6 + j], ref, 1e-5 * std::max(1.0, std::fabs(ref))) << n << "," << j;
    }

  // Without the output scale the same quantizers give an output off by 1/(s_w*s_a).
  QLinear plain(fp, spec_of(8, 8, per_channel));
  plain.act_scale().copy_(q.act_scale().detach());
  EXPECT_GT(rel_error(plain(x), y_fp), 0.5);
}

TEST_P(OutputScale, ConvStartsAtTheFloatOutput) {
  const bool per_channel = GetParam();
  Conv2d fp(3, 4, 3, 1, 1, 1, 1, true, DType::f32, 5);
  QConv2d q(fp, with_output_scale(spec_of(8, 8, per_channel)));
  Tensor x = test::random_tensor({2, 3, 6, 6}, 22, 0.0, 10.0, DType::f32);
  calibrate(q, x);
  for (float o : as_floats(q.output_scale())) EXPECT_GT(o, 2.0f);
  EXPECT_LT(rel_error(q(x), fp(x)), 0.05);
  QConv2d plain(fp, spec_of(8, 8, per_channel));
  plain.act_scale().copy_(q.act_scale().detach());
  EXPECT_GT(rel_error(plain(x), fp(x)), 0.5);
}

INSTANTIATE_TEST_SUITE_P(Scales, OutputScale, ::testing::Bool(), [](const auto& info) {
  return std::string(info.param ? "per_channel" : "per_tensor");
});

TEST(OutputScale, FollowsScaleInitialisation) {
  Linear fp(6, 5, true, DType::f32, 1);
  QLinear q(fp, with_output_scale(spec_of(4, 4, true)));
  // At construction s_a = 1, so o = |s_w|.
  EXPECT_EQ(as_floats(q.output_scale()), as_floats(q.weight_scale()));
  q.act_scale().fill_(-2.5);  // |s_a| is used
  q.init_weight_scale();
  const auto ws = as_floats(q.weight_scale()), os = as_floats(q.output_scale());
  for (size_t j = 0; j < os.size(); ++j) EXPECT_FLOAT_EQ(os[j], std::fabs(ws[j]) * 2.5f) << j;
  EXPECT_NE(os[0], os[1]);  // one per output feature
}

TEST(OutputScale, GradientMatchesFiniteDifferences) {
  Linear fp(8, 3, true, DType::f64, 4);
  QLinear q(fp, with_output_scale(spec_of(8, 8, true)));
  Tensor x = test::random_tensor({5, 8}, 23, 0.0, 3.0);
  calibrate(q, x);
  Tensor proj = test::random_tensor({5, 3}, 24);
  auto loss = [&] { return ops::sum(ops::mul(q(x), proj)); };
  loss().backward();
  Tensor o = q.output_scale();
  ASSERT_TRUE(o.grad().defined());
  const auto g = o.grad().contiguous().to_vector<double>();
  const auto o0 = o.contiguous().to_vector<double>();
  const double h = 1e-6;
  for (size_t j = 0; j < o0.size(); ++j) {
    auto at = [&](double d) {
      NoGradGuard ng;
      auto v = o0;
      v[j] += d;
      o.copy_(Tensor::from_vector(v, o.shape()));
      return loss().item();
    };
    const double fd = (at(h) - at(-h)) / (2 * h);
    EXPECT_NEAR(g[j], fd, 1e-6 * std::max(1.0, std::fabs(fd))) << j;
    EXPECT_GT(std::fabs(g[j]), 1e-3) << j;
  }
  // The rest of the layer still gets gradients through the output scale.
  for (const Tensor& t : {q.weight(), q.weight_scale(), q.act_scale(), fp.bias()})
    EXPECT_TRUE(t.grad().defined());
}

TEST(OutputScale, StateDictLayout) {
  Linear fp(6, 5, true, DType::f32, 1);
  QLinear q(fp, with_output_scale(spec_of(2, 2, true)));
  EXPECT_EQ(names_of(q.state_dict()),
            (std::vector<std::string>{"weight", "bias", "weight_scale", "act_scale", "output_scale",
                                      "weight_codes", "weight_prev_codes"}));
  EXPECT_EQ(q.output_scale().shape(), (Shape{5}));
  // Stays a parameter when the weight scale is frozen (TRS), like the activation scale.
  QLinear frozen(fp, with_output_scale(spec_of(2, 2, false, /*learn=*/false)));
  EXPECT_EQ(names_of(frozen.named_parameters()),
            (std::vector<std::string>{"weight", "bias", "act_scale", "output_scale"}));
  EXPECT_EQ(frozen.output_scale().shape(), (Shape{1}));
  // Off by default.
  QLinear plain(fp, spec_of(2, 2, true));
  EXPECT_FALSE(plain.output_scale().defined());
  for (auto& n : names_of(plain.state_dict())) EXPECT_NE(n, "output_scale");
}

}  // namespace
