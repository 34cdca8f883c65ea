// Layer modules: parameter/buffer names and order as PyTorch, wiring of options into the ops
// (against naive loops written here), train/eval behaviour, initialisers, and finite-difference
// gradient checks through module compositions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/autograd.h"
#include "gradcheck.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/functional.h"
#include "layers/identity.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/pooling.h"
#include "layers/sequential.h"
#include "models/resnet.h"
#include "module_test_util.h"

using namespace tranq;
using test::names_of;
using test::random_tensor;
using test::values;

namespace {

void set_values(const Tensor& t, uint64_t seed, double lo = -1, double hi = 1) {
  t.copy_(random_tensor(t.shape(), seed, lo, hi, t.dtype()));
}

// Direct convolution, x [N,C,H,W], w [O,C/g,K,K].
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, int64_t s,
                               int64_t p, int64_t d, int64_t g, Shape& out_shape) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), K = w.size(2), cg = C / g, og = O / g;
  const int64_t OH = (H + 2 * p - d * (K - 1) - 1) / s + 1,
                OW = (W + 2 * p - d * (K - 1) - 1) / s + 1;
  out_shape = {N, O, OH, OW};
  std::vector<double> xv = values(x), wv = values(w),
                      bv = b.defined() ? values(b) : std::vector<double>(O, 0.0);
  std::vector<double> out;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bv[o];
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < K; ++kh)
              for (int64_t kw = 0; kw < K; ++kw) {
                const int64_t ih = oh * s - p + kh * d, iw = ow * s - p + kw * d;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ci = (o / og) * cg + c;
                acc += xv[((n * C + ci) * H + ih) * W + iw] * wv[((o * cg + c) * K + kh) * K + kw];
              }
          out.push_back(acc);
        }
  return out;
}

void expect_all_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

}  // namespace

TEST(Conv2d, ParametersShapesAndDefaultInit) {
  Conv2d conv(4, 6, 3, 1, 1, 1, 2, true);
  EXPECT_EQ(names_of(conv.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(conv.weight().shape(), (Shape{6, 2, 3, 3}));
  EXPECT_EQ(conv.bias().shape(), (Shape{6}));
  EXPECT_TRUE(conv.weight().requires_grad());
  const double bound = 1.0 / std::sqrt(18.0);  // PyTorch default: 1/sqrt(fan_in)
  for (const Tensor& t : {conv.weight(), conv.bias()}) {
    std::vector<double> v = values(t);
    EXPECT_LE(*std::max_element(v.begin(), v.end()), bound);
    EXPECT_GE(*std::min_element(v.begin(), v.end()), -bound);
  }
  // An explicit seed, 0 included, means Rng(seed): weight then bias drawn from it in that order.
  Conv2d zero(4, 6, 3, 1, 1, 1, 2, true, DType::f32, 0),
      other(4, 6, 3, 1, 1, 1, 2, true, DType::f32, 1);
  Tensor w0 = Tensor::empty({6, 2, 3, 3}), b0 = Tensor::empty({6});
  Rng r0(0);
  init::kaiming_uniform_(w0, r0, std::sqrt(5.0));
  init::uniform_(b0, -bound, bound, r0);
  EXPECT_EQ(values(zero.weight()), values(w0));
  EXPECT_EQ(values(zero.bias()), values(b0));
  EXPECT_NE(values(other.weight()), values(zero.weight()));
  EXPECT_NE(values(conv.weight()), values(zero.weight())) << "no seed is not seed 0";
  Conv2d nobias(3, 5, 1, 1, 0, 1, 1, false, DType::f64);
  EXPECT_EQ(names_of(nobias.state_dict()), (std::vector<std::string>{"weight"}));
  EXPECT_FALSE(nobias.bias().defined());
  EXPECT_EQ(nobias.weight().dtype(), DType::f64);
  EXPECT_THROW(Conv2d(4, 6, 3, 1, 0, 1, 3), ValueError);
  EXPECT_THROW(conv(Tensor::zeros({1, 3, 5, 5})), ValueError);
}

TEST(Conv2d, ForwardMatchesNaiveLoop) {
  struct Case {
    int64_t in, out, k, s, p, d, g;
    bool bias;
  };
  for (const Case& c : {Case{3, 4, 3, 1, 1, 1, 1, true}, Case{4, 6, 3, 2, 1, 1, 2, true},
                        Case{4, 4, 3, 1, 2, 2, 4, false}, Case{2, 3, 1, 2, 0, 1, 1, true}}) {
    Conv2d conv(c.in, c.out, c.k, c.s, c.p, c.d, c.g, c.bias, DType::f64, 3);
    Tensor x = random_tensor({2, c.in, 7, 6}, 11);
    Shape shape;
    std::vector<double> want = naive_conv(x, conv.weight(), conv.bias(), c.s, c.p, c.d, c.g, shape);
    Tensor y = conv(x);
    EXPECT_EQ(y.shape(), shape);
    expect_all_near(values(y), want, 1e-12);
  }
}

TEST(Linear, ParametersInitAndForward) {
  Linear fc(5, 3, true, DType::f64, 9);
  EXPECT_EQ(names_of(fc.state_dict()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(fc.weight().shape(), (Shape{3, 5}));
  const double bound = 1 / std::sqrt(5.0);
  for (double v : values(fc.weight())) EXPECT_LE(std::fabs(v), bound);
  for (double v : values(fc.bias())) EXPECT_LE(std::fabs(v), bound);
  Tensor x = random_tensor({4, 5}, 2);
  std::vector<double> xv = values(x), w = values(fc.weight()), b = values(fc.bias()), want;
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 3; ++o) {
      double acc = b[o];
      for (int i = 0; i < 5; ++i) acc += xv[n * 5 + i] * w[o * 5 + i];
      want.push_back(acc);
    }
  expect_all_near(values(fc(x)), want, 1e-12);
  EXPECT_THROW(fc(Tensor::zeros({4, 6}, DType::f64)), ValueError);
  Linear nobias(5, 3, false);
  EXPECT_EQ(names_of(nobias.state_dict()), (std::vector<std::string>{"weight"}));
}

TEST(BatchNorm2d, StateDictLayoutLikePyTorch) {
  BatchNorm2d bn(3);
  EXPECT_EQ(names_of(bn.state_dict()),
            (std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                      "num_batches_tracked"}));
  EXPECT_EQ(names_of(bn.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(values(bn.weight()), std::vector<double>(3, 1.0));
  EXPECT_EQ(values(bn.bias()), std::vector<double>(3, 0.0));
  EXPECT_EQ(values(bn.running_mean()), std::vector<double>(3, 0.0));
  EXPECT_EQ(values(bn.running_var()), std::vector<double>(3, 1.0));
  EXPECT_EQ(bn.num_batches_tracked().dtype(), DType::i64);
  EXPECT_EQ(bn.num_batches_tracked().shape(), Shape{});
  EXPECT_THROW(bn(Tensor::zeros({2, 4, 3, 3})), ValueError);
}

TEST(BatchNorm2d, TrainUsesBatchStatsAndUpdatesRunningStatsEvalUsesThem) {
  BatchNorm2d bn(2, 1e-5, 0.1, DType::f64);
  set_values(bn.weight(), 1, 0.5, 1.5);
  set_values(bn.bias(), 2);
  Tensor x = random_tensor({3, 2, 2, 2}, 3, -2, 3);
  std::vector<double> xv = values(x), w = values(bn.weight()), b = values(bn.bias());
  std::vector<double> mean(2, 0), var(2, 0);
  const int per = 3 * 4;
  auto at = [&](int n, int c, int i) { return xv[(n * 2 + c) * 4 + i]; };
  for (int c = 0; c < 2; ++c) {
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 4; ++i) mean[c] += at(n, c, i) / per;
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 4; ++i) var[c] += (at(n, c, i) - mean[c]) * (at(n, c, i) - mean[c]) / per;
  }
  auto expected = [&](const std::vector<double>& m, const std::vector<double>& v) {
    std::vector<double> out;
    for (int n = 0; n < 3; ++n)
      for (int c = 0; c < 2; ++c)
        for (int i = 0; i < 4; ++i)
          out.push_back((at(n, c, i) - m[c]) / std::sqrt(v[c] + 1e-5) * w[c] + b[c]);
    return out;
  };
  expect_all_near(values(bn(x)), expected(mean, var), 1e-10);
  std::vector<double> rm = {0.1 * mean[0], 0.1 * mean[1]};
  std::vector<double> rv = {0.9 + 0.1 * var[0] * per / (per - 1),
                            0.9 + 0.1 * var[1] * per / (per - 1)};
  expect_all_near(values(bn.running_mean()), rm, 1e-12);
  expect_all_near(values(bn.running_var()), rv, 1e-12);
  EXPECT_EQ(bn.num_batches_tracked().item(), 1);

  bn.eval();
  rm = values(bn.running_mean());
  rv = values(bn.running_var());
  expect_all_near(values(bn(x)), expected(rm, rv), 1e-10);
  EXPECT_EQ(values(bn.running_mean()), rm);
  EXPECT_EQ(values(bn.running_var()), rv);
  EXPECT_EQ(bn.num_batches_tracked().item(), 1);
}

TEST(Activations, ReluRelu6IdentityFlatten) {
  Tensor x = Tensor::from_vector<float>({-1, 0.5f, 3, 7}, {1, 1, 2, 2});
  EXPECT_EQ(ReLU()(x).to_vector<float>(), (std::vector<float>{0, 0.5f, 3, 7}));
  EXPECT_EQ(ReLU6()(x).to_vector<float>(), (std::vector<float>{0, 0.5f, 3, 6}));
  EXPECT_TRUE(Identity()(x).same_as(x));
  EXPECT_EQ(Flatten()(Tensor::zeros({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  EXPECT_EQ(Flatten(2)(Tensor::zeros({2, 3, 4, 5})).shape(), (Shape{2, 3, 20}));
}

TEST(Pooling, WindowsAndDefaults) {
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[i] = static_cast<float>((i * 7) % 16);
  Tensor x = Tensor::from_vector(v, {1, 1, 4, 4});
  MaxPool2d mp(2);  // stride defaults to the kernel size
  EXPECT_EQ(mp.pool_params().stride_h, 2);
  // rows: [0 7 14 5] [12 3 10 1] [8 15 6 13] [4 11 2 9]
  EXPECT_EQ(mp(x).to_vector<float>(), (std::vector<float>{12, 14, 15, 13}));
  EXPECT_EQ(AvgPool2d(2)(x).to_vector<float>(), (std::vector<float>{5.5f, 7.5f, 9.5f, 7.5f}));
  MaxPool2d mp3(3, 2, 1);
  EXPECT_EQ(mp3(x).shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(mp3(x).to_vector<float>(), (std::vector<float>{12, 14, 15, 15}));
  EXPECT_EQ(AdaptiveAvgPool2d()(x).to_vector<float>(), (std::vector<float>{7.5f}));
  EXPECT_EQ(AdaptiveAvgPool2d(1)(x).shape(), (Shape{1, 1, 1, 1}));
  EXPECT_THROW(AdaptiveAvgPool2d(2), ValueError);
  EXPECT_THROW(MaxPool2d(2, 2, 2), ValueError);
  EXPECT_THROW(mp(Tensor::zeros({4, 4})), ValueError);
}

// PyTorch draws each layer from its global generator: layers built without a seed differ from
// one another, and the same construction order after the same manual_seed replays them.
TEST(DefaultSeed, UnseededLayersDifferAndReplayAfterManualSeed) {
  struct Layers {
    Conv2d c1{16, 16, 3}, c2{16, 16, 3};
    Linear l1{8, 4}, l2{8, 4};
    Dropout d1{0.5}, d2{0.5};
  };
  manual_seed(123);
  Layers a;
  EXPECT_NE(values(a.c1.weight()), values(a.c2.weight()));
  EXPECT_NE(values(a.c1.bias()), values(a.c2.bias()));
  EXPECT_NE(values(a.l1.weight()), values(a.l2.weight()));
  EXPECT_NE(values(a.l1.bias()), values(a.l2.bias()));
  const Tensor x = Tensor::ones({1000});
  const std::vector<float> mask1 = a.d1(x).to_vector<float>();
  EXPECT_NE(mask1, a.d2(x).to_vector<float>());

  manual_seed(123);
  Layers b;
  EXPECT_EQ(values(b.c1.weight()), values(a.c1.weight()));
  EXPECT_EQ(values(b.c2.weight()), values(a.c2.weight()));
  EXPECT_EQ(values(b.c2.bias()), values(a.c2.bias()));
  EXPECT_EQ(values(b.l2.weight()), values(a.l2.weight()));
  EXPECT_EQ(b.d1(x).to_vector<float>(), mask1);
  EXPECT_EQ(b.d2.rng().key(), a.d2.rng().key());

  manual_seed(124);
  Layers c;
  EXPECT_NE(values(c.c1.weight()), values(a.c1.weight()));

  // Explicit seeds neither read nor advance the source; a rejected layer does not advance it.
  manual_seed(123);
  Conv2d explicit_seed(16, 16, 3, 1, 0, 1, 1, true, DType::f32, 5);
  Linear explicit_fc(8, 4, true, DType::f32, 5);
  Dropout explicit_drop(0.5, 5);
  EXPECT_EQ(explicit_drop.rng().key(), Rng(5).key());
  EXPECT_THROW(Dropout(2.0), ValueError);
  Conv2d first(16, 16, 3);
  EXPECT_EQ(values(first.weight()), values(a.c1.weight()));
}

// Concurrent draws each get their own index: together they are exactly the sequential draws.
TEST(DefaultSeed, ConcurrentDrawsAreDistinct) {
  constexpr int kThreads = 4, kDraws = 2000;
  manual_seed(9);
  std::vector<uint64_t> sequential;
  for (int i = 0; i < kThreads * kDraws; ++i) sequential.push_back(next_default_seed());
  manual_seed(9);
  std::vector<std::vector<uint64_t>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&per_thread, t] {
      for (int i = 0; i < kDraws; ++i) per_thread[t].push_back(next_default_seed());
    });
  for (auto& th : threads) th.join();
  std::vector<uint64_t> concurrent;
  for (const auto& v : per_thread) concurrent.insert(concurrent.end(), v.begin(), v.end());
  std::sort(sequential.begin(), sequential.end());
  std::sort(concurrent.begin(), concurrent.end());
  EXPECT_EQ(concurrent, sequential);
  EXPECT_EQ(std::adjacent_find(sequential.begin(), sequential.end()), sequential.end());
}

TEST(Dropout, TrainingMaskEvalIdentityAndResumableRng) {
  Dropout drop(0.25, 42);
  Tensor x = Tensor::ones({10000});
  const uint64_t key = drop.rng().key(), counter = drop.rng().counter();
  std::vector<float> y = drop(x).to_vector<float>();
  int zeros = 0;
  for (float v : y) {
    if (v == 0)
      ++zeros;
    else
      EXPECT_FLOAT_EQ(v, 1 / 0.75f);
  }
  EXPECT_NEAR(zeros, 2500, 200);  // ~4.6 sigma
  EXPECT_NE(drop(x).to_vector<float>(), y) << "the stream advances";
  drop.rng().set_state(key, counter);
  EXPECT_EQ(drop(x).to_vector<float>(), y) << "restoring the rng state replays the mask";
  drop.eval();
  EXPECT_TRUE(drop(x).same_as(x));
  EXPECT_THROW(Dropout(1.01), ValueError);
  EXPECT_THROW(Dropout(-0.1), ValueError);
}

TEST(Sequential, NamesOrderModeAndForward) {
  Sequential seq;
  auto fc1 = std::make_shared<Linear>(3, 4, true, DType::f64, 1);
  auto fc2 = std::make_shared<Linear>(4, 2, false, DType::f64, 2);
  seq.push_back(fc1);
  seq.push_back(std::make_shared<ReLU>());
  seq.push_back(fc2);
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(names_of(seq.state_dict()),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight"}));
  EXPECT_EQ(seq[2].get(), fc2.get());
  EXPECT_THROW(seq.at(3), ValueError);
  EXPECT_THROW(seq.push_back(nullptr), ValueError);
  Tensor x = random_tensor({2, 3}, 5);
  EXPECT_EQ(values(seq(x)), values((*fc2)(ops::relu((*fc1)(x)))));
  Sequential outer({std::make_shared<Identity>(),
                    std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{fc1})});
  EXPECT_EQ(names_of(outer.state_dict()), (std::vector<std::string>{"1.0.weight", "1.0.bias"}));
  outer.eval();
  EXPECT_FALSE(fc1->is_training());
  outer.train();
  EXPECT_TRUE(fc1->is_training());
}

TEST(Init, FansGainsAndDistributions) {
  Tensor w = Tensor::empty({8, 4, 3, 3});
  EXPECT_EQ(init::fan(w, init::FanMode::fan_in), 36);
  EXPECT_EQ(init::fan(w, init::FanMode::fan_out), 72);
  EXPECT_THROW(init::fan(Tensor::empty({5}), init::FanMode::fan_in), ValueError);
  EXPECT_DOUBLE_EQ(init::leaky_relu_gain(0), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::leaky_relu_gain(std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_EQ(init::stream_id(""), 0xcbf29ce484222325ull);  // FNV-1a offset basis
  EXPECT_EQ(init::stream_id("a"), 0xaf63dc4c8601ec8cull);

  Tensor big = Tensor::empty({1000, 100}, DType::f64);
  Rng rng(1);
  init::kaiming_normal_(big, rng, 0.0, init::FanMode::fan_out);
  std::vector<double> v = values(big);
  double mean = 0, sq = 0;
  for (double x : v) mean += x / v.size();
  for (double x : v) sq += (x - mean) * (x - mean) / v.size();
  EXPECT_NEAR(mean, 0, 0.001);
  EXPECT_NEAR(std::sqrt(sq) / std::sqrt(2.0 / 1000), 1.0, 0.01);
  init::kaiming_uniform_(big, rng, 0.0, init::FanMode::fan_in);  // bound sqrt(2) * sqrt(3/100)
  v = values(big);
  const double bound = std::sqrt(6.0 / 100);
  EXPECT_LE(*std::max_element(v.begin(), v.end()), bound);
  EXPECT_GT(*std::max_element(v.begin(), v.end()), 0.99 * bound);
  EXPECT_GE(*std::min_element(v.begin(), v.end()), -bound);

  Tensor a = Tensor::empty({64}), b = Tensor::empty({64});
  Rng r1(5), r2(5);
  init::normal_(a, 1.0, 0.5, r1);
  init::normal_(b, 1.0, 0.5, r2);
  EXPECT_EQ(values(a), values(b));
  Tensor strided = Tensor::zeros({4, 4}).transpose(0, 1);
  init::constant_(strided, 2.0);
  EXPECT_EQ(values(strided), std::vector<double>(16, 2.0));
}

TEST(GradCheck, ConvBnReluPoolLinearComposition) {
  auto conv = std::make_shared<Conv2d>(2, 4, 3, 1, 1, 1, 2, true, DType::f64, 1);
  auto bn = std::make_shared<BatchNorm2d>(4, 1e-5, 0.1, DType::f64);
  set_values(bn->weight(), 2, 0.5, 1.5);
  set_values(bn->bias(), 3);
  auto fc = std::make_shared<Linear>(4 * 3 * 3, 3, true, DType::f64, 4);
  Sequential net({conv, bn, std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(2),
                  std::make_shared<Flatten>(), fc});
  Tensor x = random_tensor({2, 2, 6, 6}, 5).set_requires_grad(true);
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : net.parameters()) inputs.push_back(p);
  for (bool training : {true, false}) {
    net.train(training);
    test::expect_gradients_match([&](const std::vector<Tensor>& in) { return net(in[0]); }, inputs);
  }
}

TEST(GradCheck, BasicBlockWithDownsample) {
  models::BasicBlock block(2, 3, 2, DType::f64);
  ASSERT_TRUE(block.has_downsample());
  EXPECT_EQ(names_of(block.named_parameters()),
            (std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight",
                                      "bn2.weight", "bn2.bias", "downsample.0.weight",
                                      "downsample.1.weight", "downsample.1.bias"}));
  uint64_t seed = 10;
  for (const Tensor& p : block.parameters()) set_values(p, seed++, 0.3, 1.2);
  Tensor x = random_tensor({2, 2, 6, 6}, 6).set_requires_grad(true);
  EXPECT_EQ(block(x).shape(), (Shape{2, 3, 3, 3}));
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : block.parameters()) inputs.push_back(p);
  for (bool training : {true, false}) {
    block.train(training);
    test::expect_gradients_match([&](const std::vector<Tensor>& in) { return block(in[0]); },
                                 inputs);
  }
  EXPECT_FALSE(models::BasicBlock(3, 3, 1).has_downsample());
}
