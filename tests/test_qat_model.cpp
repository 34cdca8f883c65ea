// quantize_model on resnet20 (which layers get quantized, at which bits, gradients) and the
// integer mode an exported model runs in.

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
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "models/registry.h"
#include "qat_test_util.h"
#include "quant/fake_quantize.h"
#include "quant/qlayers.h"
#include "quant/transform.h"

using namespace tranq;
using quant::QConv2d;
using quant::QLinear;
using test::Bits;
using test::bitwise_equal;
using test::names_of;
using test::ref_codes;
using test::spec_of;

namespace {

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
  for (auto& n : names_of(model->state_dict()))
    EXPECT_EQ(n.find("output_scale"), std::string::npos) << n;

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
  // Only the last layer has no BN after it, so only it gets an output scale.
  for (auto& n : sd) {
    if (n.find("output_scale") != std::string::npos) {
      EXPECT_EQ(n, "fc.output_scale");
    }
  }
  EXPECT_EQ(std::count(sd.begin(), sd.end(), "fc.output_scale"), 1);
  ASSERT_TRUE(fc->output_scale().defined());
  EXPECT_EQ(fc->output_scale().shape(), (Shape{kClasses}));  // per channel, as weight_scale
  EXPECT_FALSE(c1->output_scale().defined());
  EXPECT_TRUE(conv_names(*model).empty());
}

// With first_last_bits the last linear's output scale o = s_w*s_a undoes the quantizer's
// 1/(s_w*s_a): the quantized model starts at the float model's output.
TEST(QuantizeModel, QuantizedLastLinearStartsAtTheFloatOutput) {
  auto make = [] {
    auto m = std::make_shared<Sequential>();
    m->push_back(std::make_shared<Flatten>());
    m->push_back(std::make_shared<Linear>(64, 5, true, DType::f32, 7));
    return m;
  };
  auto fp = make(), m = make();
  quant::QuantizeOptions opt;
  opt.spec = spec_of(2, 2, false);
  opt.first_last_bits = 8;
  ASSERT_EQ(quant::quantize_model(*m, opt), (std::vector<std::string>{"1"}));
  auto* q = dynamic_cast<QLinear*>(m->at(1).get());
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(names_of(m->state_dict()),
            (std::vector<std::string>{"1.weight", "1.bias", "1.weight_scale", "1.act_scale",
                                      "1.output_scale", "1.weight_codes", "1.weight_prev_codes"}));
  Tensor x = test::random_tensor({6, 1, 8, 8}, 8, 0.0, 20.0, DType::f32);  // post-ReLU-like
  quant::calibrate_activation_scales(*m, x);
  const float o = q->output_scale().to_vector<float>()[0];
  EXPECT_FLOAT_EQ(o, std::fabs(q->weight_scale().to_vector<float>()[0]) *
                         std::fabs(q->act_scale().to_vector<float>()[0]));
  EXPECT_GT(o, 3.0f) << "the test needs s_w*s_a far from 1";
  auto y = (*m)(x).to_vector<float>(), ref = (*fp)(x).to_vector<float>();
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    num += (y[i] - ref[i]) * (y[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  EXPECT_LT(std::sqrt(num / den), 0.05);
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
    EXPECT_EQ(q->output_scale().defined(), first_last != 0 && n == "fc") << n;
    if (q->output_scale().defined())
      expect_some_nonzero(q->output_scale().grad(), n + ".output_scale");
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
  // The exported model keeps the last layer's output scale as a float tensor.
  const auto has_fc_scale = std::count_if(dict.begin(), dict.end(), [](const auto& e) {
    return e.first == "fc.output_scale" && e.second.dtype() == DType::f32;
  });
  EXPECT_EQ(has_fc_scale, first_last != 0 ? 1 : 0);
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
