// Models: architecture pinned against torchvision 0.14 (state-dict names/shapes, parameter
// counts, and outputs of torchvision's own modules in f64 for a shared deterministic filling of
// every tensor), train/eval behaviour, state-dict round trips and reproducible initialisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/rng.h"
#include "layers/dropout.h"
#include "layers/functional.h"
#include "models/mobilenet_v2.h"
#include "models/registry.h"
#include "models/resnet.h"
#include "torchvision_state_dicts.h"

using namespace tranq;

namespace {

// ---- reference outputs. Every state-dict entry k (in order) and element i gets
// u = hash_uniform(k, i) in [-1, 1); weights (>= 2 dims) u * sqrt(6 / fan_in), 1-d "weight"
// 1 + 0.2u, "running_var" 0.75 + 0.25u, other 1-d tensors 0.1u; the input uses k = 999. The
// outputs below are torchvision's modules (double precision) on that filling, in eval mode and
// then in train mode (batch statistics). resnet20 is torchvision's BasicBlock stacked as in
// models/resnet.h (conv3x3 stem, [3, 3, 3] x [16, 32, 64], 1x1 conv + BN projections).
const double kResnet20Eval[] = {
    // resnet20 in1 c10 [2,1,28,28] Eval [2, 10]
    99.32250602639823,   34.26326242850071,  -221.71669584091958, 34.60715101909976,
    -61.789877250713374, 80.89378680780678,  -5.073229641098199,  102.70497996690466,
    -151.96834182994132, -53.37761371727954, 99.10015720864688,   40.995905563719546,
    -231.49300050309458, 45.823215943118086, -61.326267607279696, 84.23259236727306,
    -8.21091381344498,   106.56566611467191, -166.31552609217482, -62.081119570634776,
};
const double kResnet20Train[] = {
    // resnet20 in1 c10 [2,1,28,28] Train [2, 10]
    0.5799655814757697,  0.6582184469466145,  -3.3175128169776853, -0.05695289326771791,
    -0.6041598969855562, 0.5581206273313623,  1.6659737449950334,  -0.08494921847694809,
    -2.5375720157359214, 0.04552001606694142, 0.6475642053306359,  0.7993722421140076,
    -3.7750157122464407, -0.3035988413070074, -0.8565041472288457, 0.8326143930192861,
    1.490195592861453,   0.23452388960034382, -3.0872142264901745, -0.03623054912234888,
};
const double kResnet18Eval[] = {
    // resnet18 in3 c10 [2,3,32,32] Eval [2, 10]
    -10.73149079956439, -24.621938557831694, 29.150525460933764,  -91.30112229944709,
    28.755005690915368, 43.75402028484948,   12.893473582115202,  58.174384180301864,
    51.42056894253885,  11.765130249108273,  -2.1607131645410647, -18.273028371236034,
    34.614055452710105, -79.75366332269112,  30.87629500607362,   31.780867823214606,
    9.867637474632408,  62.17842114769309,   32.97776006578831,   18.669280343504706,
};
const double kResnet18Train[] = {
    // resnet18 in3 c10 [2,3,32,32] Train [2, 10]
    -0.7513951957820993, 1.1132006995995458,   -0.047758204707164256, -2.967865740049128,
    0.550341128080135,   -0.24324937333178936, 0.7176919975837222,    3.7335148312110302,
    -1.223523100871647,  1.3433410831415804,   -1.982980153962763,    0.3376045427622972,
    0.8423286040952215,  -1.797748136815575,   0.9443637286581255,    0.37419579662907027,
    0.5795782140110856,  -2.960179716486559,   3.7060075574152025,    -1.4716156431724572,
};
const double kMobilenetV2Eval[] = {
    // mobilenet_v2 in3 c10 dropout0 [2,3,32,32] Eval [2, 10]
    3.5486995023527803, -1.7315810198991033, 1.7258132680218083, -8.095206314442956,
    2.4359840497804344, 4.131650948173449,   1.9254472869988848, -3.858601896299069,
    -4.024517626526198, 2.2065476862585696,  2.580565012072763,  2.912087791605471,
    1.7677351359870768, -7.5515766968363796, 1.015952875447399,  3.096440675188931,
    1.1437140187013197, -5.243353267931161,  -3.655280452868504, 1.7493696388029476,
};
const double kMobilenetV2Train[] = {
    // mobilenet_v2 in3 c10 dropout0 [2,3,32,32] Train [2, 10]
    0.3875372850711849,  0.013410295770270293, 1.1907432117503038,   -0.02553017691183363,
    -0.8374779963814771, -0.2652643952348427,  -0.08889699269338047, -0.5468962824138174,
    -1.7687406304335076, 1.2255043157905092,   0.862516257928922,    0.08949599308637396,
    -0.5165031095279319, -2.4922176389207307,  -0.8494325087192854,  1.0955767843236008,
    0.6412316425253177,  -0.2380554100752636,  -1.5978801296528058,  -0.09788201354546487,
};

double hash_uniform(uint64_t k, uint64_t i) {
  return 2.0 * (static_cast<double>(mix64(k * 1000003 + i) >> 11) * 0x1.0p-53) - 1.0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The filling described above; must stay in step with the generator.
void fill_reference(Module& m) {
  NamedTensors sd = m.state_dict();
  for (size_t k = 0; k < sd.size(); ++k) {
    const auto& [name, t] = sd[k];
    if (ends_with(name, "num_batches_tracked")) continue;
    std::vector<double> v(static_cast<size_t>(t.numel()));
    const double w_scale =
        t.dim() >= 2 ? std::sqrt(6.0 / static_cast<double>(t.numel() / t.size(0))) : 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const double u = hash_uniform(k, i);
      if (t.dim() >= 2)
        v[i] = u * w_scale;
      else if (ends_with(name, "running_var"))
        v[i] = 0.75 + 0.25 * u;
      else if (ends_with(name, "weight"))
        v[i] = 1 + 0.2 * u;
      else
        v[i] = 0.1 * u;
    }
    t.copy_(Tensor::from_vector(v, t.shape()).to(t.dtype()));
  }
}

Tensor reference_input(const Shape& shape, DType dtype) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = hash_uniform(999, i);
  return Tensor::from_vector(v, shape).to(dtype);
}

void expect_close(const Tensor& got, const double* want, int64_t n, const char* what) {
  ASSERT_EQ(got.numel(), n) << what;
  std::vector<double> g = got.to(DType::f64).to_vector<double>();
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(g[i], want[i], 1e-9 * std::max(1.0, std::fabs(want[i])))
        << what << " element " << i;
}

void check_against_torchvision(Module& m, const Shape& input, const double* eval_out,
                               const double* train_out) {
  fill_reference(m);
  Tensor x = reference_input(input, DType::f64);
  NoGradGuard ng;
  m.eval();
  expect_close(m(x), eval_out, 20, "eval");
  m.train();
  expect_close(m(x), train_out, 20, "train");
}

std::vector<std::string> describe(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, t] : m.state_dict()) {
    std::string s = name + ":";
    for (size_t d = 0; d < t.shape().size(); ++d)
      s += (d ? "," : "") + std::to_string(t.shape()[d]);
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> split_words(const char* text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

int64_t count_parameters(const Module& m) {
  int64_t n = 0;
  for (const auto& t : m.parameters()) n += t.numel();
  return n;
}

bool same_values(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first) return false;
    if (a[i].second.to(DType::f64).to_vector<double>() !=
        b[i].second.to(DType::f64).to_vector<double>())
      return false;
  }
  return true;
}

Tensor find(const Module& m, const std::string& name) {
  for (const auto& [n, t] : m.state_dict())
    if (n == name) return t;
  ADD_FAILURE() << "no tensor " << name;
  return Tensor();
}

double stddev(const Tensor& t) {
  std::vector<double> v = t.to(DType::f64).to_vector<double>();
  double mean = 0, sq = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / static_cast<double>(v.size()));
}

}  // namespace

TEST(Models, NamesAndUnknownModel) {
  EXPECT_EQ(model_names(),
            (std::vector<std::string>{"resnet20", "resnet18", "resnet34", "mobilenet_v2"}));
  try {
    create_model("vgg16", 3, 10, 0);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(),
                 "unknown model 'vgg16'; known: resnet20, resnet18, resnet34, mobilenet_v2");
  }
  EXPECT_THROW(create_model("resnet20", 0, 10, 0), ValueError);
}

TEST(Models, Resnet18StateDictMatchesTorchvision) {
  auto m = create_model("resnet18", 3, 1000, 0);
  EXPECT_EQ(describe(*m), split_words(kResnet18StateDict));
  EXPECT_EQ(count_parameters(*m), 11689512);
  EXPECT_EQ(find(*m, "layer3.0.bn2.num_batches_tracked").dtype(), DType::i64);
  EXPECT_EQ(count_parameters(*create_model("resnet18", 1, 10, 0)), 11175370);
}

TEST(Models, MobilenetV2StateDictMatchesTorchvision) {
  auto m = create_model("mobilenet_v2", 3, 1000, 0);
  EXPECT_EQ(describe(*m), split_words(kMobilenetV2StateDict));
  EXPECT_EQ(count_parameters(*m), 3504872);
  EXPECT_EQ(count_parameters(*create_model("mobilenet_v2", 1, 10, 0)), 2236106);
  auto* net = dynamic_cast<models::MobileNetV2*>(m.get());
  ASSERT_NE(net, nullptr);
  int residuals = 0;
  for (auto& [name, mod] : net->named_modules()) {
    if (auto* ir = dynamic_cast<models::InvertedResidual*>(mod)) residuals += ir->use_residual();
    if (auto* d = dynamic_cast<Dropout*>(mod)) {
      EXPECT_EQ(name, "classifier.0");
      EXPECT_DOUBLE_EQ(d->p(), 0.2);
    }
  }
  EXPECT_EQ(residuals, 10) << "torchvision's MobileNetV2 adds the input back in 10 blocks";
}

TEST(Models, Resnet20AndResnet34Layout) {
  auto r20 = create_model("resnet20", 3, 10, 0);
  std::vector<std::string> d = describe(*r20);
  ASSERT_EQ(d.size(), 128u);
  EXPECT_EQ(d.front(), "conv1.weight:16,3,3,3");
  EXPECT_EQ(d.back(), "fc.bias:10");
  EXPECT_NE(std::find(d.begin(), d.end(), "layer2.0.downsample.0.weight:32,16,1,1"), d.end());
  EXPECT_NE(std::find(d.begin(), d.end(), "layer3.0.downsample.1.num_batches_tracked:"), d.end());
  EXPECT_EQ(
      std::count_if(d.begin(), d.end(),
                    [](const std::string& s) { return s.find("downsample") != std::string::npos; }),
      12);
  EXPECT_EQ(count_parameters(*r20), 272474);
  EXPECT_EQ(count_parameters(*create_model("resnet20", 1, 10, 0)), 272186);
  auto r34 = create_model("resnet34", 3, 1000, 0);
  EXPECT_EQ(count_parameters(*r34), 21797672);
  EXPECT_EQ(r34->state_dict().size(), 218u);
}

TEST(Models, ForwardMatchesTorchvisionResnet20) {
  auto m = models::resnet20(1, 10, 0, DType::f64);
  check_against_torchvision(*m, {2, 1, 28, 28}, kResnet20Eval, kResnet20Train);
}

TEST(Models, ForwardMatchesTorchvisionResnet18) {
  auto m = models::resnet18(3, 10, 0, DType::f64);
  check_against_torchvision(*m, {2, 3, 32, 32}, kResnet18Eval, kResnet18Train);
}

TEST(Models, ForwardMatchesTorchvisionMobilenetV2) {
  // Dropout off so that train mode is deterministic, as in the reference (dropout=0.0).
  models::MobileNetV2 m(3, 10, 0, DType::f64, 0.0);
  check_against_torchvision(m, {2, 3, 32, 32}, kMobilenetV2Eval, kMobilenetV2Train);
}

class ModelForward : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelForward, ShapesOnMnistAndCifarSizedInputs) {
  NoGradGuard ng;
  for (const Shape& in : {Shape{2, 1, 28, 28}, Shape{2, 3, 32, 32}}) {
    auto m = create_model(GetParam(), in[1], 10, 1);
    m->eval();
    Tensor y = (*m)(reference_input(in, DType::f32));
    EXPECT_EQ(y.shape(), (Shape{2, 10})) << "on " << shape_str(in);
    for (float v : y.to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, ModelForward, ::testing::ValuesIn(model_names()),
                         [](const auto& info) { return info.param; });

TEST(Models, TrainMovesRunningStatsEvalDoesNot) {
  auto m = create_model("resnet20", 1, 10, 3);
  Tensor x = reference_input({4, 1, 28, 28}, DType::f32);
  Tensor rm = find(*m, "layer2.0.bn1.running_mean");
  std::vector<float> before = rm.to_vector<float>();
  m->eval();
  Tensor e1 = (*m)(x);
  EXPECT_EQ(rm.to_vector<float>(), before);
  for (const auto& [n, t] : m->named_buffers()) {
    if (ends_with(n, "num_batches_tracked")) {
      EXPECT_EQ(t.item(), 0) << n;
    }
  }
  m->train();
  (*m)(x);
  (*m)(x);
  EXPECT_NE(rm.to_vector<float>(), before);
  int counters = 0;
  for (const auto& [n, t] : m->named_buffers()) {
    if (!ends_with(n, "num_batches_tracked")) continue;
    ++counters;
    EXPECT_EQ(t.item(), 2) << n;
  }
  EXPECT_EQ(counters, 21);
  m->eval();
  Tensor e2 = (*m)(x);
  EXPECT_NE(e1.to_vector<float>(), e2.to_vector<float>()) << "eval uses the moved running stats";
  EXPECT_EQ(e2.to_vector<float>(), (*m)(x).to_vector<float>());
}

TEST(Models, DropoutOnlyInTraining) {
  auto m = create_model("mobilenet_v2", 3, 10, 5);
  Tensor x = reference_input({2, 3, 32, 32}, DType::f32);
  NoGradGuard ng;
  m->eval();
  EXPECT_EQ((*m)(x).to_vector<float>(), (*m)(x).to_vector<float>());
  // Train-mode BN output depends only on the batch, so two passes differ only by the mask.
  m->train();
  EXPECT_NE((*m)(x).to_vector<float>(), (*m)(x).to_vector<float>());
  models::MobileNetV2 no_drop(3, 10, 5, DType::f32, 0.0);
  no_drop.train();
  EXPECT_EQ(no_drop(x).to_vector<float>(), no_drop(x).to_vector<float>());
}

TEST(Models, StateDictRoundTripGivesIdenticalOutputs) {
  for (const char* name : {"resnet20", "mobilenet_v2"}) {
    auto a = create_model(name, 3, 10, 1), b = create_model(name, 3, 10, 2);
    a->eval();
    b->eval();
    Tensor x = reference_input({2, 3, 32, 32}, DType::f32);
    NoGradGuard ng;
    EXPECT_NE((*a)(x).to_vector<float>(), (*b)(x).to_vector<float>()) << name;
    LoadReport r = b->load_state_dict(a->state_dict());
    EXPECT_TRUE(r.ok()) << r.str();
    EXPECT_EQ((*a)(x).to_vector<float>(), (*b)(x).to_vector<float>()) << name;
  }
}

TEST(Models, LoadWithWrongShapeNamesTheTensor) {
  auto m = create_model("resnet20", 3, 10, 0);
  NamedTensors sd = create_model("resnet20", 3, 100, 0)->state_dict();
  try {
    m->load_state_dict(sd);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("fc.weight"), std::string::npos) << e.what();
  }
}

TEST(Models, InitIsReproducibleAndTorchvisionLike) {
  EXPECT_TRUE(same_values(create_model("resnet20", 3, 10, 7)->state_dict(),
                          create_model("resnet20", 3, 10, 7)->state_dict()));
  EXPECT_FALSE(same_values(create_model("resnet20", 3, 10, 7)->state_dict(),
                           create_model("resnet20", 3, 10, 8)->state_dict()));
  auto mb1 = create_model("mobilenet_v2", 3, 10, 7), mb2 = create_model("mobilenet_v2", 3, 10, 7);
  EXPECT_TRUE(same_values(mb1->state_dict(), mb2->state_dict()));

  auto r18 = create_model("resnet18", 3, 1000, 11);
  // kaiming_normal(fan_out, relu): std sqrt(2 / (512 * 9)) over 2.4M samples.
  EXPECT_NEAR(stddev(find(*r18, "layer4.1.conv2.weight")) / std::sqrt(2.0 / 4608), 1.0, 0.01);
  EXPECT_NEAR(stddev(find(*r18, "conv1.weight")) / std::sqrt(2.0 / (64 * 49)), 1.0, 0.02);
  const double bound = 1 / std::sqrt(512.0);  // nn.Linear's default
  for (const char* n : {"fc.weight", "fc.bias"}) {
    std::vector<float> v = find(*r18, n).to_vector<float>();
    EXPECT_LE(*std::max_element(v.begin(), v.end()), bound);
    EXPECT_GE(*std::min_element(v.begin(), v.end()), -bound);
    EXPECT_GT(*std::max_element(v.begin(), v.end()), 0.9 * bound) << n;
  }
  EXPECT_EQ(find(*r18, "layer1.0.bn1.weight").to_vector<float>(), std::vector<float>(64, 1.0f));
  EXPECT_EQ(find(*r18, "layer1.0.bn1.bias").to_vector<float>(), std::vector<float>(64, 0.0f));
  EXPECT_NEAR(stddev(find(*mb1, "classifier.1.weight")), 0.01, 0.0005);
  EXPECT_EQ(find(*mb1, "classifier.1.bias").to_vector<float>(), std::vector<float>(10, 0.0f));
  // Depthwise [96, 1, 3, 3]: PyTorch's fan_out ignores groups, 96 * 9.
  EXPECT_NEAR(stddev(find(*mb1, "features.2.conv.1.0.weight")) / std::sqrt(2.0 / 864), 1.0, 0.1);
}
