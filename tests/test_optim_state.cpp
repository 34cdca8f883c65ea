// Optimizer state: checkpoint round trips, names, and what a bad load is refused with.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "core/safetensors.h"
#include "optim/optimizer.h"
#include "optim_test_util.h"

using namespace tranq;
using namespace tranq::optim;
using namespace tranq::test;

namespace {

// Runs `name` for 2 steps, checkpoints (optionally through a safetensors file), then checks that
// a fresh optimizer restored from the checkpoint takes bit-identical next steps.
void check_resume(const std::string& name, DType dt, const std::string& file) {
  Tensor a = make_param(dt), b = make_param(dt, {3.0, 4.0, -5.0});
  ParamGroup g1 = group_of("layer.weight", a), g2 = group_of("layer.bias", b);
  g1.lr = 0.05;
  g1.momentum = 0.9;
  g1.weight_decay = 0.01;
  g2.lr = 0.02;
  g2.momentum = 0.5;
  g2.nesterov = true;
  auto opt = make_optimizer(name, {g1, g2});
  for (int k = 0; k < 2; ++k) {
    a.set_grad(grad_of(kGrads[k], dt));
    if (k == 1) b.set_grad(grad_of(kGrads[k], dt));
    opt->step();
  }
  NamedTensors state = opt->state_tensors();
  int64_t steps = opt->steps();
  if (!file.empty()) {
    std::map<std::string, std::string> meta = opt->state_metadata();
    EXPECT_EQ(meta["optimizer"], name);
    EXPECT_EQ(meta["steps"], "2");
    EXPECT_EQ(meta["group.1.lr"], "0.02");
    save_safetensors(file, state, meta);
    SafetensorsContent c = load_safetensors(file);
    state = c.tensors;
    steps = std::stoll(c.metadata.at("steps"));
  }
  Tensor a2 = a.detach().clone(), b2 = b.detach().clone();
  a2.set_requires_grad(true);
  b2.set_requires_grad(true);
  ParamGroup h1 = g1, h2 = g2;
  h1.params = {a2};
  h2.params = {b2};
  auto resumed = make_optimizer(name, {h1, h2});
  resumed->load_state(state, steps);
  EXPECT_EQ(resumed->steps(), 2);
  for (const Tensor& t : {a, a2, b, b2}) t.set_grad(grad_of(kGrads[2], dt));
  opt->step();
  resumed->step();
  EXPECT_EQ(values(a2), values(a)) << name;
  EXPECT_EQ(values(b2), values(b)) << name;
  NamedTensors s1 = opt->state_tensors(), s2 = resumed->state_tensors();
  ASSERT_EQ(s1.size(), s2.size());
  for (size_t i = 0; i < s1.size(); ++i) {
    EXPECT_EQ(s1[i].first, s2[i].first);
    EXPECT_EQ(values(s1[i].second), values(s2[i].second)) << s1[i].first;
  }
}

}  // namespace

TEST(Optim, StateRoundTripGivesIdenticalNextSteps) {
  for (const std::string name : {"sgd", "adam", "adamw"}) {
    check_resume(name, DType::f64, "");
    check_resume(name, DType::f32, "");
  }
}

TEST(Optim, StateRoundTripThroughSafetensorsFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tranq_test_optim_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const std::string name : {"sgd", "adam", "adamw"}) {
    check_resume(name, DType::f32, (dir / (name + ".safetensors")).string());
  }
  std::filesystem::remove_all(dir);
}

TEST(Optim, StateNamesFollowPyTorchBuffers) {
  Tensor p = make_param();
  ParamGroup g = group_of("layer1.0.conv1.weight", p);
  g.momentum = 0.9;
  auto sgd = make_sgd({g});
  NamedTensors before = sgd->state_tensors();
  ASSERT_EQ(before.size(), 1u) << "no buffers before the first update";
  EXPECT_EQ(before[0].first, "layer1.0.conv1.weight.step");
  p.set_grad(grad_of(kGrads[0], DType::f64));
  sgd->step();
  NamedTensors st = sgd->state_tensors();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[1].first, "layer1.0.conv1.weight.momentum_buffer");
  EXPECT_EQ(st[1].second.to_vector<double>(), kGrads[0]) << "the first buffer is the gradient";
  EXPECT_EQ(st[0].second.dtype(), DType::i64);
  // state_tensors returns copies: changing them does not change the optimizer.
  st[1].second.fill_(7.0);
  EXPECT_EQ(sgd->state_tensors()[1].second.to_vector<double>(), kGrads[0]);

  Tensor q = make_param();
  auto adam = make_adamw({group_of("fc.bias", q)});
  q.set_grad(grad_of(kGrads[0], DType::f64));
  adam->step();
  NamedTensors sa = adam->state_tensors();
  ASSERT_EQ(sa.size(), 3u);
  EXPECT_EQ(sa[1].first, "fc.bias.exp_avg");
  EXPECT_EQ(sa[2].first, "fc.bias.exp_avg_sq");
}

TEST(Optim, LoadStateRejectsMismatchAndKeepsState) {
  Tensor p = make_param();
  auto opt = make_adam({group_of("w", p)});
  p.set_grad(grad_of(kGrads[0], DType::f64));
  opt->step();
  const NamedTensors good = opt->state_tensors();

  auto expect_rejected = [&](NamedTensors bad, const std::string& needle) {
    try {
      opt->load_state(bad, 5);
      ADD_FAILURE() << "expected ValueError mentioning " << needle;
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_EQ(opt->steps(), 1) << "a failed load must change nothing";
    EXPECT_EQ(values(opt->state_tensors()[1].second), values(good[1].second));
  };
  NamedTensors missing = {good[0], good[1]};
  expect_rejected(missing, "w.exp_avg_sq");
  NamedTensors extra = good;
  extra.emplace_back("v.exp_avg", Tensor::zeros({3}, DType::f64));
  expect_rejected(extra, "unexpected (1): v.exp_avg");
  NamedTensors shape = good;
  shape[1].second = Tensor::zeros({4}, DType::f64);
  expect_rejected(shape, "w.exp_avg: expected f64[3]");
  NamedTensors dtype = good;
  dtype[2].second = Tensor::zeros({3}, DType::f32);
  expect_rejected(dtype, "w.exp_avg_sq");
  expect_rejected({}, "missing (1): w.step");
  NamedTensors bad_step = good;
  bad_step[0].second = Tensor::full({}, 1.0, DType::f64);
  expect_rejected(bad_step, "w.step");
  EXPECT_THROW(opt->load_state(good, -1), ValueError);
  // Loading copies: the loaded tensors are not aliased.
  NamedTensors copy = opt->state_tensors();
  opt->load_state(copy, 1);
  copy[1].second.fill_(3.0);
  EXPECT_EQ(values(opt->state_tensors()[1].second), values(good[1].second));
}
