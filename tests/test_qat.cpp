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

}  // namespace
