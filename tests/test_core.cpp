#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "layers/functional.h"
#include "optim/optimizer.h"

using namespace tranq;

TEST(Tensor, FactoriesShapesAndStrides) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << "host memory is 64-byte aligned";
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  Tensor f = Tensor::full({3}, 2.5, DType::f64);
  EXPECT_EQ(f.to_vector<double>(), (std::vector<double>{2.5, 2.5, 2.5}));
  EXPECT_THROW(t.data<double>(), ValueError);
  EXPECT_THROW(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), ValueError);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor v = t.view({3, 2});
  v.data<float>()[0] = 42;
  EXPECT_EQ(t.data<float>()[0], 42);
  Tensor row = t.select(0, 1);
  EXPECT_EQ(row.to_vector<float>(), (std::vector<float>{3, 4, 5}));
  Tensor col = t.narrow(1, 1, 1);
  EXPECT_FALSE(col.is_contiguous());
  EXPECT_EQ(col.contiguous().to_vector<float>(), (std::vector<float>{1, 4}));
  Tensor tr = t.transpose(0, 1);
  EXPECT_EQ(tr.shape(), (Shape{3, 2}));
  EXPECT_EQ(tr.contiguous().to_vector<float>(), (std::vector<float>{42, 3, 1, 4, 2, 5}));
  EXPECT_THROW(tr.view({6}), ValueError);
  EXPECT_EQ(tr.reshape({6}).to_vector<float>(), (std::vector<float>{42, 3, 1, 4, 2, 5}));
  EXPECT_EQ(t.view({-1}).shape(), (Shape{6}));
  Tensor c = t.clone();
  c.data<float>()[1] = -1;
  EXPECT_EQ(t.data<float>()[1], 1);
}

TEST(Tensor, DtypeConversionAndItem) {
  Tensor t = Tensor::from_vector<float>({1.5f, -2.0f}, {2});
  EXPECT_EQ(t.to(DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{1, -2}));
  EXPECT_DOUBLE_EQ(Tensor::full({}, 3.0).item(), 3.0);
  EXPECT_THROW(t.item(), ValueError);
}

TEST(Device, ParseAndMissingBackend) {
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_THROW(Device::parse("tpu"), ValueError);
}

TEST(Rng, ReproducibleAndResumable) {
  Rng a(7), b(7), c(8);
  for (int i = 0; i < 5; ++i) a.next_u64();
  Rng resumed;
  resumed.set_state(a.key(), a.counter());
  for (int i = 0; i < 5; ++i) b.next_u64();
  EXPECT_EQ(a.next_u64(), resumed.next_u64());
  EXPECT_EQ(b.counter(), 5u);
  EXPECT_NE(Rng(7).next_u64(), c.next_u64());
  // Uniform draws cover [0,1) with the right mean.
  Rng r(1);
  double s = 0;
  for (int i = 0; i < 100000; ++i) s += r.uniform();
  EXPECT_NEAR(s / 100000, 0.5, 0.01);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = Tensor::from_vector<double>({1, -2, 3}, {3});
  x.set_requires_grad(true);
  ops::sum(ops::mul(x, x)).backward();  // d/dx = 2x
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, -4, 6}));
  ops::sum(ops::scale(x, 3.0)).backward();  // adds 3
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, -1, 9}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, InputUsedTwiceSumsBothPaths) {
  Tensor x = Tensor::from_vector<double>({2}, {1});
  x.set_requires_grad(true);
  Tensor y = ops::add(x, x);            // both gradients alias the same incoming tensor
  ops::sum(ops::mul(y, x)).backward();  // 2x^2 -> 4x
  EXPECT_DOUBLE_EQ(x.grad().item(), 8.0);
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = Tensor::ones({2}, DType::f64);
  x.set_requires_grad(true);
  {
    NoGradGuard ng;
    Tensor y = ops::relu(x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(ops::relu(x).requires_grad());
}

TEST(Autograd, SecondBackwardThroughFreedGraphThrows) {
  Tensor x = Tensor::ones({2}, DType::f64);
  x.set_requires_grad(true);
  Tensor loss = ops::sum(ops::relu(x));
  loss.backward();
  EXPECT_THROW(loss.backward(), ValueError);
}

TEST(Autograd, ElementwiseGradients) {
  Tensor a = test::random_tensor({3, 4}, 1), b = test::random_tensor({3, 4}, 2);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  test::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        return ops::relu6(
            ops::scale(ops::add(ops::sub(ops::mul(in[0], in[1]), in[1]), in[0]), 4.0));
      },
      {a, b});
  test::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::mean(ops::relu(ops::flatten(in[0], 0))); },
      {a});
}

TEST(Autograd, ReluKinkIsSkippedNotFailed) {
  Tensor x = Tensor::from_vector<double>({0.0, 0.5, -0.5, 1.0}, {4});
  x.set_requires_grad(true);
  test::expect_gradients_match([](const std::vector<Tensor>& in) { return ops::relu(in[0]); }, {x},
                               {1e-6, 1e-6, 0.3});
}

// ---- gradients that alias one another (add's backward returns {g, g}) ----

namespace {
Tensor leaf(const std::vector<double>& v) {
  Tensor t = Tensor::from_vector<double>(v, {static_cast<int64_t>(v.size())});
  t.set_requires_grad(true);
  return t;
}
bool same_memory(const Tensor& a, const Tensor& b) {
  return a.storage() == b.storage();
}
}  // namespace

TEST(AutogradAliasing, PassThroughGradientIsNotAddedIntoInPlace) {
  // loss = w + 2w + 2w: the outer add hands one tensor to both the inner add and h; adding the
  // inner add's share into h's slot in place used to double it (6).
  Tensor w = leaf({1.0, -3.0});
  Tensor h = ops::scale(w, 2.0);
  ops::sum(ops::add(ops::add(w, h), h)).backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{5.0, 5.0}));
  // A second pass adds 5 more to the same .grad.
  Tensor first = w.grad();
  Tensor h2 = ops::scale(w, 2.0);
  ops::sum(ops::add(ops::add(w, h2), h2)).backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{10.0, 10.0}));
  EXPECT_TRUE(first.same_as(w.grad())) << "a leaf's grad is accumulated in place";
}

TEST(AutogradAliasing, InteriorSlotsSharingOneGradient) {
  Tensor x = leaf({1.0});
  Tensor u = ops::scale(x, 1.0), v = ops::scale(x, 1.0);
  ops::sum(ops::add(ops::add(u, v), u)).backward();  // u + v + u = 3x (was 4)
  EXPECT_EQ(x.grad().item(), 3.0);

  Tensor y = leaf({2.0, -1.0});
  Tensor a = ops::scale(y, 2.0), b = ops::scale(y, 3.0);
  // 2y + 3y + 2y + 2y: a reaches the root through three adds that all pass g on.
  ops::sum(ops::add(ops::add(ops::add(a, b), a), a)).backward();
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{9.0, 9.0}));
}

TEST(AutogradAliasing, LeafGradsAreDistinctAndAccumulateOverPasses) {
  Tensor a = leaf({1.0, 2.0}), b = leaf({3.0, 4.0});
  ops::sum(ops::add(a, b)).backward();
  ASSERT_TRUE(a.grad().defined() && b.grad().defined());
  EXPECT_FALSE(a.grad().same_as(b.grad()));
  EXPECT_FALSE(same_memory(a.grad(), b.grad()));
  ops::sum(ops::add(a, b)).backward();  // was 3: b's share added into a.grad, which was b.grad
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{2.0, 2.0}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{2.0, 2.0}));
  a.grad().data<double>()[0] = 100;  // e.g. gradient clipping, in place
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{2.0, 2.0}));

  // The same leaf on both sides: 2 per pass, in a .grad of its own.
  Tensor c = leaf({1.0});
  ops::sum(ops::add(c, c)).backward();
  ops::sum(ops::add(c, c)).backward();
  EXPECT_EQ(c.grad().item(), 4.0);
}

TEST(AutogradAliasing, CallersRootGradientIsLeftUnchanged) {
  Tensor x = leaf({2.0, 5.0});
  Tensor u = ops::scale(x, 1.0);
  Tensor g = Tensor::from_vector<double>({1.0, 10.0}, {2});
  ops::add(u, u).backward(g);  // both of add's shares are g itself
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{1.0, 10.0}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, 20.0}));

  // Leaves reached directly from the root: their grads must not be the caller's tensor.
  Tensor a = leaf({1.0, 1.0}), b = leaf({1.0, 1.0});
  ops::add(a, b).backward(g);
  EXPECT_FALSE(same_memory(a.grad(), g));
  EXPECT_FALSE(same_memory(b.grad(), g));
  a.grad().data<double>()[0] = 100;
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{1.0, 10.0}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1.0, 10.0}));

  // A view of the caller's gradient (reshape's backward) shares its storage, not its impl.
  Tensor m = leaf({1, 2, 3, 4, 5, 6});
  Tensor gm = Tensor::full({2, 3}, 1.0, DType::f64);
  ops::reshape(m, {2, 3}).backward(gm);
  EXPECT_FALSE(same_memory(m.grad(), gm));
  ops::reshape(m, {2, 3}).backward(gm);
  EXPECT_EQ(m.grad().to_vector<double>(), std::vector<double>(6, 2.0));
  EXPECT_EQ(gm.to_vector<double>(), std::vector<double>(6, 1.0));

  // backward(g) on a leaf itself copies g too.
  Tensor l = leaf({0.0, 0.0});
  l.backward(g);
  l.backward(g);
  EXPECT_EQ(l.grad().to_vector<double>(), (std::vector<double>{2.0, 20.0}));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{1.0, 10.0}));
}

// ---- shape and conversion checks ----

using test::expect_value_error;

TEST(Tensor, FlattenChecksStartDim) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  expect_value_error([&] { t.flatten(5); }, "[-2, 1]");
  expect_value_error([&] { t.flatten(2); }, "[-2, 1]");
  expect_value_error([&] { t.flatten(-3); }, "[-2, 1]");
  expect_value_error([&] { ops::flatten(t, 5); }, "[-2, 1]");
  expect_value_error([&] { ops::flatten(t, -3); }, "[-2, 1]");
  EXPECT_EQ(t.flatten(0).shape(), (Shape{6}));
  EXPECT_EQ(t.flatten(-2).shape(), (Shape{6}));
  EXPECT_EQ(t.flatten(-1).shape(), (Shape{2, 3}));
  EXPECT_EQ(ops::flatten(t, 1).shape(), (Shape{2, 3}));
  EXPECT_EQ(Tensor::full({}, 7.0).flatten(0).shape(), (Shape{1}));  // 0-d acts as one dim
  EXPECT_THROW(Tensor::full({}, 7.0).flatten(1), ValueError);
  // A zero dim before the merged ones no longer trips view()'s -1 inference.
  EXPECT_EQ(Tensor::zeros({2, 0, 3}).flatten(1).shape(), (Shape{2, 0}));
  EXPECT_EQ(Tensor::zeros({0, 3}).flatten(1).shape(), (Shape{0, 3}));
}

TEST(Tensor, ViewRejectsNegativeDimsOtherThanMinusOne) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  expect_value_error([&] { t.view({-2, -3}); }, "negative");
  expect_value_error([&] { t.view({-3, 2, -1}); }, "negative");
  EXPECT_THROW(t.view({-1, -1}), ValueError);
  EXPECT_EQ(t.view({3, -1}).shape(), (Shape{3, 2}));
  // An empty tensor cannot be viewed with dims whose product overflows.
  Tensor e = Tensor::zeros({0});
  EXPECT_THROW(e.view({0, int64_t{1} << 62, 8}), ValueError);
  EXPECT_EQ(e.view({0, 1 << 20, 8}).strides(), (Shape{8 << 20, 8, 1}));
}

TEST(Tensor, NarrowBoundsDoNotOverflow) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  EXPECT_THROW(t.narrow(1, INT64_MAX, 2), ValueError);  // start + length wrapped negative
  EXPECT_THROW(t.narrow(1, 2, INT64_MAX), ValueError);
  EXPECT_THROW(t.narrow(1, 4, 0), ValueError);
  EXPECT_THROW(t.narrow(1, -1, 1), ValueError);
  EXPECT_THROW(t.narrow(2, 0, 1), ValueError);
  EXPECT_EQ(t.narrow(1, 3, 0).shape(), (Shape{2, 0}));
  EXPECT_EQ(t.narrow(-1, 1, 2).contiguous().to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
}

TEST(Tensor, EmptyRejectsShapesWhoseSizeOverflows) {
  // 2^62 * 8 elements wrapped to numel 0 before.
  expect_value_error([] { Tensor::empty({int64_t{1} << 62, 8}); }, "[4611686018427387904, 8]");
  // The elements fit in int64 but their bytes do not.
  expect_value_error([] { Tensor::empty({int64_t{1} << 61, 2}, DType::f32); }, "too large");
  // A zero dim does not excuse the others: strides would overflow.
  EXPECT_THROW(Tensor::empty({0, INT64_MAX, INT64_MAX}), ValueError);
  EXPECT_THROW(Tensor::zeros({-1, 2}), ValueError);
  EXPECT_THROW(Tensor::from_vector<float>({}, {0, INT64_MAX, 2}), ValueError);
  Tensor ok = Tensor::empty({0, int64_t{1} << 40, 1 << 20}, DType::u8);
  EXPECT_EQ(ok.numel(), 0);
  EXPECT_EQ(ok.strides(), (Shape{int64_t{1} << 60, 1 << 20, 1}));
}

TEST(Tensor, FloatToIntConversionSaturatesAndMapsNanToZero) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor f = Tensor::from_vector<float>(
      {300.f, -300.f, nan, inf, -inf, 2.9f, -2.9f, 127.5f, -128.5f, -0.5f}, {10});
  EXPECT_EQ(f.to(DType::i8).to_vector<int8_t>(),
            (std::vector<int8_t>{127, -128, 0, 127, -128, 2, -2, 127, -128, 0}));
  EXPECT_EQ(f.to(DType::u8).to_vector<uint8_t>(),
            (std::vector<uint8_t>{255, 0, 0, 255, 0, 2, 0, 127, 0, 0}));
  Tensor big = Tensor::from_vector<float>({-1e30f, 3e9f, 1e30f, nan}, {4});
  EXPECT_EQ(big.to(DType::i32).to_vector<int32_t>(),
            (std::vector<int32_t>{INT32_MIN, INT32_MAX, INT32_MAX, 0}));
  EXPECT_EQ(big.to(DType::i64).to_vector<int64_t>(),
            (std::vector<int64_t>{INT64_MIN, 3000000000, INT64_MAX, 0}));
  Tensor d = Tensor::from_vector<double>(
      {2147483647.9, -2147483648.5, 9.2e18, 9.3e18, -9.3e18, -2147483647.9}, {6});
  EXPECT_EQ(
      d.to(DType::i32).to_vector<int32_t>(),
      (std::vector<int32_t>{INT32_MAX, INT32_MIN, INT32_MAX, INT32_MAX, INT32_MIN, -2147483647}));
  EXPECT_EQ(d.to(DType::i64).to_vector<int64_t>()[2], int64_t{9200000000000000000});
  EXPECT_EQ(d.to(DType::i64).to_vector<int64_t>()[3], INT64_MAX);
  EXPECT_EQ(d.to(DType::i64).to_vector<int64_t>()[4], INT64_MIN);
  // fill_ converts its value the same way.
  EXPECT_EQ(Tensor::full({2}, 1e30, DType::i32).to_vector<int32_t>(),
            (std::vector<int32_t>{INT32_MAX, INT32_MAX}));
  EXPECT_EQ(Tensor::full({1}, std::nan(""), DType::u8).to_vector<uint8_t>()[0], 0);
  EXPECT_EQ(Tensor::full({1}, -7.9, DType::i8).to_vector<int8_t>()[0], -7);
}

#include "core/caching_allocator.h"

namespace {
// Upstream that counts what reaches it.
class CountingAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    ++allocs;
    return cpu_allocator().allocate(bytes);
  }
  void deallocate(void* p, size_t bytes) override {
    ++frees;
    cpu_allocator().deallocate(p, bytes);
  }
  int allocs = 0, frees = 0;
};
}  // namespace

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameSizeAndRespectsItsCap) {
  CountingAllocator up;
  {
    CachingAllocator cache(up, 1000);
    void* a = cache.allocate(400);
    cache.deallocate(a, 400);
    void* b = cache.allocate(400);
    EXPECT_EQ(a, b) << "same size: the cached block comes back";
    EXPECT_EQ(up.allocs, 1);
    void* c = cache.allocate(300);  // other size: a new block
    EXPECT_EQ(up.allocs, 2);
    void* d = cache.allocate(700);
    cache.deallocate(b, 400);
    cache.deallocate(d, 700);  // 400 + 700 > cap: goes upstream
    EXPECT_EQ(up.frees, 1);
    auto s = cache.stats();
    EXPECT_EQ(s.cached_bytes, 400u);
    EXPECT_EQ(s.in_use_bytes, 300u);
    EXPECT_EQ(s.peak_in_use_bytes, 1400u);
    EXPECT_EQ(s.hits, 1u);
    EXPECT_EQ(s.misses, 3u);
    cache.deallocate(c, 300);
  }
  EXPECT_EQ(up.frees, up.allocs) << "everything returned upstream at destruction";
}

// Version counters: an input written in place between an op and its backward makes backward
// throw, naming the op, instead of differentiating with values the forward did not see.
TEST(AutogradVersions, WritingASavedInputInPlaceMakesBackwardThrow) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  Tensor w = Tensor::from_vector<double>({4, 5, 6}, {3});
  x.set_requires_grad(true);
  Tensor loss = ops::sum(ops::mul(x, w));
  const uint64_t before = w.version();
  w.copy_(Tensor::from_vector<double>({7, 8, 9}, {3}));
  EXPECT_EQ(w.version(), before + 1);
  try {
    loss.backward();
    FAIL() << "backward used an input written in place";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'mul'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("in place"), std::string::npos) << e.what();
  }
}

TEST(AutogradVersions, ViewsShareTheCounterAndFillCounts) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2});
  x.set_requires_grad(true);
  Tensor loss = ops::sum(ops::mul(x, x));
  x.detach().narrow(0, 1, 1).fill_(0.0);  // a view of the saved input
  EXPECT_THROW(loss.backward(), ValueError);
}

TEST(AutogradVersions, AnOptimizerStepBeforeBackwardIsCaught) {
  Tensor w = Tensor::from_vector<double>({1, -2}, {2});
  w.set_requires_grad(true);
  optim::ParamGroup g;
  g.params = {w};
  g.names = {"w"};
  g.lr = g.base_lr = 0.1;
  auto opt = optim::make_optimizer("sgd", {g});
  Tensor loss = ops::sum(ops::mul(w, w));
  w.set_grad(Tensor::from_vector<double>({1, 1}, {2}));
  opt->step();  // w changed after mul saved it
  EXPECT_THROW(loss.backward(), ValueError);
  // The usual order works: forward, backward, step, then the next forward.
  opt->zero_grad();
  Tensor loss2 = ops::sum(ops::mul(w, w));
  loss2.backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{2 * 0.9, 2 * -2.1}));
  opt->step();
  EXPECT_NO_THROW(ops::sum(ops::mul(w, w)).backward());
}

TEST(AutogradVersions, WritesToOtherTensorsAndAfterBackwardAreFine) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2});
  Tensor other = Tensor::zeros({2}, DType::f64);
  x.set_requires_grad(true);
  Tensor loss = ops::sum(ops::scale(x, 3.0));
  other.fill_(1.0);
  loss.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 3}));
  x.detach().fill_(5.0);  // the graph is done with x
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{5, 5}));
}
