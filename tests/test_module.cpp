// Module bookkeeping: registration names (unique, non-empty, no '.'), load_state_dict's
// treatment of duplicate keys and of a BatchNorm2d counter absent from old dicts, and to()
// carrying gradients along. Device moves use a stand-in backend whose memory is host memory,
// registered as the CUDA backend when no real GPU is present (as in test_device_copy).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/autograd.h"
#include "fake_device.h"
#include "gradcheck.h"
#include "kernels/cuda_runtime.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/functional.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/sequential.h"
#include "module_test_util.h"

using namespace tranq;
using test::expect_value_error;
using test::names_of;
using test::values;

namespace {

// A module whose registration methods are public, to probe them.
class Probe : public Module {
 public:
  using Module::register_buffer;
  using Module::register_module;
  using Module::register_parameter;
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace

// ---- registration names ------------------------------------------------------------------

TEST(ModuleNames, EmptyDottedAndDuplicateNamesAreRejected) {
  Probe m;
  m.register_parameter("w", Tensor::zeros({2}));
  m.register_buffer("b", Tensor::zeros({2}));
  m.register_module("child", std::make_shared<Linear>(2, 2, true, DType::f32, 1));

  for (const char* taken : {"w", "b", "child"}) {
    expect_value_error([&] { m.register_parameter(taken, Tensor::zeros({1})); }, "already used");
    expect_value_error([&] { m.register_buffer(taken, Tensor::zeros({1})); }, "already used");
    expect_value_error([&] { m.register_module(taken, std::make_shared<Probe>()); },
                       "already used");
  }
  expect_value_error([&] { m.register_parameter("", Tensor::zeros({1})); }, "empty");
  expect_value_error([&] { m.register_buffer("", Tensor::zeros({1})); }, "empty");
  expect_value_error([&] { m.register_module("", std::make_shared<Probe>()); }, "empty");
  // "child.weight" would collide with the child's own parameter in the state dict.
  expect_value_error([&] { m.register_parameter("child.weight", Tensor::zeros({1})); }, "'.'");
  expect_value_error([&] { m.register_buffer("a.b", Tensor::zeros({1})); }, "'.'");
  expect_value_error([&] { m.register_module("a.b", std::make_shared<Probe>()); }, "'.'");
  expect_value_error([&] { m.register_module("none", std::shared_ptr<Probe>()); }, "null");
  expect_value_error([&] { m.register_buffer("undef", Tensor()); }, "undefined");

  // Nothing was added by the refused calls; a fresh name still works.
  EXPECT_EQ(names_of(m.state_dict()),
            (std::vector<std::string>{"w", "b", "child.weight", "child.bias"}));
  m.register_buffer("w2", Tensor::zeros({1}));
  EXPECT_EQ(m.state_dict().size(), 5u);
  // The same name in different modules is fine: keys differ by prefix.
  Sequential seq({std::make_shared<Linear>(2, 2, true, DType::f32, 1),
                  std::make_shared<Linear>(2, 2, true, DType::f32, 2)});
  EXPECT_EQ(names_of(seq.state_dict()),
            (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"}));
}

// ---- load_state_dict -----------------------------------------------------------------------

TEST(LoadStateDict, DuplicateKeysAreRejectedStrictOrNot) {
  Linear fc(2, 2, true, DType::f32, 1);
  const std::vector<double> before = values(fc.weight());
  NamedTensors dict = fc.state_dict();
  dict.emplace_back("weight", Tensor::ones({2, 2}));
  for (bool strict : {true, false}) {
    expect_value_error([&] { fc.load_state_dict(dict, strict); }, "'weight' more than once");
    EXPECT_EQ(values(fc.weight()), before) << "nothing loaded";
  }
}

namespace {

std::shared_ptr<Sequential> conv_bn(uint64_t seed) {
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Conv2d>(1, 3, 3, 1, 1, 1, 1, true, DType::f32, seed),
      std::make_shared<BatchNorm2d>(3)});
}

NamedTensors without(NamedTensors dict, const std::string& key) {
  for (auto it = dict.begin(); it != dict.end(); ++it)
    if (it->first == key) {
      dict.erase(it);
      return dict;
    }
  ADD_FAILURE() << "no key " << key;
  return dict;
}

int64_t count_of(const BatchNorm2d& bn) {
  return bn.num_batches_tracked().to_vector<int64_t>().at(0);
}

}  // namespace

// Old torchvision weights (no version metadata) lack num_batches_tracked; PyTorch loads them
// strictly with the counter set to 0.
TEST(LoadStateDict, AbsentBatchNormCounterLoadsAsZero) {
  auto src = conv_bn(1), dst = conv_bn(2);
  auto& src_bn = dynamic_cast<BatchNorm2d&>(*src->at(1));
  auto& dst_bn = dynamic_cast<BatchNorm2d&>(*dst->at(1));
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2}, {1, 1, 3, 4});
  (*src)(x);
  (*dst)(x);
  (*dst)(x);
  ASSERT_EQ(count_of(dst_bn), 2);
  const NamedTensors old = without(src->state_dict(), "1.num_batches_tracked");
  LoadReport r;
  ASSERT_NO_THROW(r = dst->load_state_dict(old, /*strict=*/true));
  EXPECT_TRUE(r.ok()) << r.str();
  EXPECT_EQ(count_of(dst_bn), 0);
  EXPECT_EQ(values(dst_bn.running_mean()), values(src_bn.running_mean()));
  EXPECT_EQ(values(dst->state_dict()[0].second), values(src->state_dict()[0].second));

  // Present, it is loaded as usual.
  EXPECT_TRUE(dst->load_state_dict(src->state_dict()).ok());
  EXPECT_EQ(count_of(dst_bn), 1);
  // Non-strict: not reported missing either, and set to 0.
  r = dst->load_state_dict(old, /*strict=*/false);
  EXPECT_TRUE(r.ok()) << r.str();
  EXPECT_EQ(count_of(dst_bn), 0);

  // A BatchNorm2d at the top level (empty prefix).
  BatchNorm2d bn(3);
  EXPECT_TRUE(bn.load_state_dict(without(src_bn.state_dict(), "num_batches_tracked")).ok());

  // Everything else stays strict: another absent BatchNorm buffer...
  expect_value_error([&] { dst->load_state_dict(without(src->state_dict(), "1.running_mean")); },
                     "missing (1): 1.running_mean");
  // ...and a buffer of the same name in a module that is not a BatchNorm2d.
  Probe p;
  p.register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
  expect_value_error([&] { p.load_state_dict({}); }, "missing (1): num_batches_tracked");
  // A strict load that fails changes nothing, the counter included.
  (*dst)(x);
  expect_value_error([&] { dst->load_state_dict(without(old, "1.running_var")); }, "1.running_var");
  EXPECT_EQ(count_of(dst_bn), 1);
}

// ---- to(device) ------------------------------------------------------------------------------

namespace {

class ModuleTo : public ::testing::Test {
 protected:
  void SetUp() override {
    test::use_fake_cuda_unless_real();  // else the real device
  }
};

}  // namespace

TEST_F(ModuleTo, GradientsMoveWithTheirParameters) {
  Sequential m({std::make_shared<Linear>(3, 2, true, DType::f32, 1),
                std::make_shared<Linear>(2, 2, true, DType::f32, 2)});
  auto& used = dynamic_cast<Linear&>(*m.at(0));
  auto& unused = dynamic_cast<Linear&>(*m.at(1));
  ops::sum(used(Tensor::from_vector<float>({1, 2, 3, -1, 0, 2}, {2, 3}))).backward();
  // d sum(x W^T + b) / dW[o][i] = sum_n x[n][i]; / db[o] = N.
  ASSERT_EQ(values(used.weight().grad()), (std::vector<double>{0, 2, 5, 0, 2, 5}));
  ASSERT_EQ(values(used.bias().grad()), (std::vector<double>{2, 2}));
  ASSERT_FALSE(unused.weight().grad().defined());
  const Tensor held = used.weight().grad();

  m.to(Device::cuda());
  EXPECT_TRUE(used.weight().device().is_cuda());
  const Tensor g = used.weight().grad();
  ASSERT_TRUE(g.defined()) << "to() dropped the gradient";
  EXPECT_TRUE(g.device().is_cuda());
  EXPECT_EQ(values(g), (std::vector<double>{0, 2, 5, 0, 2, 5}));
  EXPECT_TRUE(used.bias().grad().device().is_cuda());
  EXPECT_EQ(values(used.bias().grad()), (std::vector<double>{2, 2}));
  EXPECT_TRUE(held.same_as(g)) << "a handle to the gradient follows it, as the parameter's does";
  EXPECT_FALSE(unused.weight().grad().defined()) << "no gradient is made up";
  EXPECT_FALSE(unused.bias().grad().defined());

  m.to(Device::cpu());
  EXPECT_TRUE(used.weight().grad().device().is_cpu());
  EXPECT_EQ(values(used.weight().grad()), (std::vector<double>{0, 2, 5, 0, 2, 5}));
  m.zero_grad();
  EXPECT_FALSE(used.weight().grad().defined());
}
