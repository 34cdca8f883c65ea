#include <gtest/gtest.h>

#include "core/autograd.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "layers/functional.h"

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
  Tensor y = ops::add(x, x);  // both gradients alias the same incoming tensor
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
        return ops::relu6(ops::scale(ops::add(ops::sub(ops::mul(in[0], in[1]), in[1]), in[0]), 4.0));
      },
      {a, b});
  test::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::mean(ops::relu(ops::flatten(in[0], 0))); }, {a});
}

TEST(Autograd, ReluKinkIsSkippedNotFailed) {
  Tensor x = Tensor::from_vector<double>({0.0, 0.5, -0.5, 1.0}, {4});
  x.set_requires_grad(true);
  test::expect_gradients_match([](const std::vector<Tensor>& in) { return ops::relu(in[0]); }, {x},
                                  {1e-6, 1e-6, 0.3});
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
