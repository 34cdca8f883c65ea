// count_correct_into on CUDA against the CPU reference: random logits full of ties and NaNs,
// f32/f64, i32/i64 labels, batch sizes around the block and grid sizes, slot handling, two runs
// agree; StepStats on the device gives the CPU's records, past its initial capacity. Skips (with
// the runtime's reason) without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "apps/step_stats.h"
#include "cuda_ops_test_util.h"
#include "kernels/accuracy.h"

using namespace tranq;
using test::on_gpu;

namespace {

// Few distinct values (ties everywhere), about 1 in 16 NaN.
Tensor tie_logits(int64_t n, int64_t c, uint64_t seed, DType dt) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(n * c));
  for (double& x : v) x = rng.below(16) == 0 ? std::nan("") : static_cast<double>(rng.below(3));
  return Tensor::from_vector(v, {n, c}).to(dt);
}

Tensor random_labels(int64_t n, int64_t c, uint64_t seed, DType dt) {
  Rng rng(seed, 7);
  std::vector<int64_t> v(static_cast<size_t>(n));
  // Low classes only: with few distinct values the argmax is mostly among the first columns,
  // so that rows match often even for wide rows.
  for (int64_t& y : v)
    y = static_cast<int64_t>(rng.below(static_cast<uint64_t>(std::min<int64_t>(c, 5))));
  const Tensor t = Tensor::from_vector(v, {n});
  if (dt == DType::i64) return t;
  return Tensor::from_vector(std::vector<int32_t>(v.begin(), v.end()), {n});
}

}  // namespace

TEST(CudaAccuracy, MatchesCpuOnRandomInputs) {
  TRANQ_REQUIRE_CUDA_OPS();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 1}, {1, 10}, {255, 3}, {256, 10}, {257, 10}, {5000, 7}, {300, 1000}};
  uint64_t seed = 11;
  for (auto [n, c] : shapes) {
    for (DType dt : {DType::f32, DType::f64}) {
      for (DType lt : {DType::i32, DType::i64}) {
        const Tensor x = tie_logits(n, c, seed, dt), y = random_labels(n, c, seed, lt);
        ++seed;
        const Tensor cpu_out = Tensor::full({3}, -5, DType::i64);
        kernels::count_correct_into(x, y, cpu_out, 2);
        const Tensor gpu_out = on_gpu(Tensor::full({3}, -5, DType::i64));
        kernels::count_correct_into(on_gpu(x), on_gpu(y), gpu_out, 2);
        kernels::count_correct_into(on_gpu(x), on_gpu(y), gpu_out, 0);  // a second run
        const std::vector<int64_t> c_v = cpu_out.to_vector<int64_t>();
        const std::vector<int64_t> g_v = gpu_out.to_vector<int64_t>();
        EXPECT_EQ(g_v[2], c_v[2]) << n << "x" << c << " " << dtype_name(dt) << " "
                                  << dtype_name(lt);
        EXPECT_EQ(g_v[0], c_v[2]) << "second run";
        EXPECT_EQ(g_v[1], -5) << "slot 1 written";
        if (n > 100) {
          EXPECT_GT(c_v[2], 0) << "a count of 0 would not tell much";
        }
      }
    }
  }
}

TEST(CudaAccuracy, EmptyBatchWritesZeroAndBadArgumentsThrow) {
  TRANQ_REQUIRE_CUDA_OPS();
  const Tensor out = on_gpu(Tensor::full({2}, 9, DType::i64));
  kernels::count_correct_into(on_gpu(Tensor::empty({0, 3})), on_gpu(Tensor::empty({0}, DType::i32)),
                              out, 1);
  EXPECT_EQ(out.to_vector<int64_t>(), (std::vector<int64_t>{9, 0}));
  const Tensor x = on_gpu(Tensor::zeros({2, 3})), y = on_gpu(Tensor::zeros({2}, DType::i32));
  EXPECT_THROW(kernels::count_correct_into(x, y, out, 2), ValueError);
  if (test::gpu().is_cpu()) return;  // -DTRANQ_CUDA_OPS_TEST_ON_CPU: no second device to mix
  EXPECT_THROW(kernels::count_correct_into(x, Tensor::zeros({2}, DType::i32), out, 0), ValueError);
  EXPECT_THROW(kernels::count_correct_into(x, y, Tensor::zeros({2}, DType::i64), 0), ValueError);
  EXPECT_THROW(kernels::count_correct_into(x, y, on_gpu(Tensor::zeros({2}, DType::i32)), 0),
               ValueError);
}

TEST(CudaAccuracy, StepStatsOnTheDeviceMatchTheCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  app::StepStats cpu, dev;
  for (int flush = 0; flush < 2; ++flush) {
    for (uint64_t s = 0; s < 70; ++s) {  // more than the initial capacity: the buffers grow
      const uint64_t seed = 500 + 100 * static_cast<uint64_t>(flush) + s;
      const int64_t n = 1 + static_cast<int64_t>(s % 37);
      const Tensor x = tie_logits(n, 10, seed, DType::f32);
      const Tensor y = random_labels(n, 10, seed, DType::i32);
      const Tensor loss = Tensor::full({}, 0.1 * static_cast<double>(s) + 1e-3, DType::f32);
      cpu.add(loss, x, y);
      dev.add(on_gpu(loss), on_gpu(x), on_gpu(y));
    }
    const std::vector<app::StepRecord> a = cpu.flush(), b = dev.flush();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(b[i].loss, a[i].loss) << i;
      EXPECT_EQ(b[i].correct, a[i].correct) << i;
      EXPECT_EQ(b[i].n, a[i].n) << i;
    }
  }
}
