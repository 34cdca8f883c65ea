// A QAT training step on a GPU only queues work: once warmed up (cuDNN's algorithm choice, the
// allocator's blocks), steps of a quantized resnet20 under SGDT (pinned uploads, forward, loss
// with labels checked on the host, backward, the multi-tensor step with device TALRs, the fused
// counting pass, the step statistics) make the host wait for the device zero times and call
// cudaMalloc zero times; the reads at a log step bring every step back. Also the pieces that
// replaced host round trips: device fills of every element size and the in-place counters.
// Without a GPU only the CPU versions run (counters); the rest skips with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "apps/step_stats.h"
#include "cuda_test_util.h"
#include "kernels/counter.h"
#include "kernels/cuda_runtime.h"
#include "layers/batch_norm.h"
#include "trs_device_util.h"

using namespace tranq;
using namespace tranq::test;

TEST(CudaStepWaits, CountersAdvanceInPlaceOnTheCpu) {
  Tensor t = Tensor::from_vector<int64_t>({5, -2, 0}, {3});
  kernels::add_to_counter(t, 3);
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{8, 1, 3}));
  EXPECT_THROW(kernels::add_to_counter(Tensor::zeros({2}), 1), ValueError);
  EXPECT_THROW(kernels::add_to_counter(Tensor::zeros({2, 2}, DType::i64).transpose(0, 1), 1),
               ValueError);
  BatchNorm2d bn(2);
  const Tensor x = random_tensor({2, 2, 3, 3}, 1, -1, 1, DType::f32);
  bn.train();
  bn(x);
  bn(x);
  bn.eval();
  bn(x);
  for (auto& [name, b] : bn.named_buffers()) {
    if (name == "num_batches_tracked") {
      EXPECT_EQ(b.to_vector<int64_t>()[0], 2);
    }
  }
}

TEST(CudaStepWaits, FillsAndCountersOnTheDeviceEqualTheCpu) {
  TRANQ_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64, DType::i8, DType::u8, DType::i32, DType::i64}) {
    Tensor d = Tensor::zeros({1000}, dt, Device::cuda());
    d.fill_(7.0);
    EXPECT_TRUE(same_bits(d, Tensor::full({1000}, 7.0, dt))) << dtype_name(dt);
    // A strided view takes the host copy path: the rest of the tensor is left alone.
    Tensor m = Tensor::zeros({4, 6}, dt, Device::cuda());
    m.narrow(1, 2, 3).fill_(3.0);
    Tensor ref = Tensor::zeros({4, 6}, dt);
    ref.narrow(1, 2, 3).fill_(3.0);
    EXPECT_TRUE(same_bits(m, ref)) << dtype_name(dt) << " strided";
  }
  EXPECT_TRUE(same_bits(Tensor::ones({3}, DType::f32, Device::cuda()), Tensor::ones({3})));
  Tensor c = Tensor::from_vector<int64_t>({5, -2, 0}, {3}).to(Device::cuda());
  kernels::add_to_counter(c, 3);
  EXPECT_EQ(c.to(Device::cpu()).to_vector<int64_t>(), (std::vector<int64_t>{8, 1, 3}));
}

TEST(CudaStepWaits, AQatTrsStepQueuesWithoutWaiting) {
  TRANQ_REQUIRE_CUDNN();
  TRANQ_REQUIRE_CACHING_ALLOCATOR();
  Rig r("sgd", Device::cuda());
  auto q = r.controller(optim::TalrRule::multiplicative);
  q->initialise();
  ASSERT_TRUE(q->deferred());
  const int64_t n = 4;
  Tensor images = Tensor::empty_pinned({n, 1, 8, 8}, DType::f32);
  images.copy_(random_tensor({n, 1, 8, 8}, 7, -1, 1, DType::f32));
  Tensor labels = Tensor::empty_pinned({n}, DType::i32);
  labels.copy_(Tensor::from_vector<int32_t>({1, 7, 3, 9}, {n}));
  app::StepStats stats;
  auto step = [&](int64_t i) {
    const Tensor x = images.to(Device::cuda(), true), y = labels.to(Device::cuda(), true);
    q->before_step(*r.opt);
    r.opt->zero_grad();
    const Tensor logits = (*r.model)(x);
    const Tensor loss = ops::cross_entropy(logits, y, 0.0, /*labels_checked=*/true);
    loss.backward();
    r.opt->step();
    q->after_step(i);
    stats.add(loss, logits, y);
  };
  step(0);
  step(1);
  cuda::synchronize();
  const uint64_t waits = cuda::host_wait_count();
  const size_t misses = cuda::memory_stats().misses;
  for (int64_t i = 2; i < 5; ++i) step(i);
  EXPECT_EQ(cuda::host_wait_count(), waits) << "a warmed-up training step made the host wait";
  EXPECT_EQ(cuda::memory_stats().misses, misses) << "a warmed-up training step called cudaMalloc";
  // The log step's reads: every step comes back, in order.
  const std::vector<app::StepRecord> records = stats.flush();
  ASSERT_EQ(records.size(), 5u);
  for (const auto& rec : records) {
    EXPECT_TRUE(std::isfinite(rec.loss));
    EXPECT_EQ(rec.n, n);
  }
  EXPECT_GT(cuda::host_wait_count(), waits);
  size_t replayed = 0;
  q->sync_for_logging([&](const quant::QatController&) { ++replayed; });
  EXPECT_EQ(replayed, 5u);
}
