// tranq bench (apps/bench.h) and the device memory statistics it reports: the bookkeeping of
// requested bytes, size bins and the bytes held from the driver (pure, every build), the
// refusal of --tf32 off CUDA, and, on a real GPU, peak_device_mb as the requested bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "apps/bench.h"
#include "cuda_test_util.h"
#include "gradcheck.h"
#include "kernels/cuda_runtime.h"

using namespace tranq;

namespace {

constexpr size_t MiB = size_t{1} << 20;

app::BenchConfig tiny(const std::string& device) {
  app::BenchConfig c;
  c.model = "resnet20";
  c.input = "3x8x8";
  c.batch_size = 2;
  c.iters = 2;
  c.warmup = 1;
  c.threads = 1;
  c.device = device;
  return c;
}

}  // namespace

// A sequence the device allocator goes through, counted by hand: misses and cache hits,
// releases into the cache, a block above 1 MiB whose bin is 25% larger than the request.
TEST(BenchMemoryStats, CountsRequestedBytesBinsAndReservedPeaks) {
  cuda::MemoryStats s;
  const size_t big = MiB + 1, big_bin = cuda::device_block_size(big);
  ASSERT_EQ(big_bin, MiB + MiB / 4);

  cuda::count_allocation(s, 4000, 4096);  // a miss
  cuda::count_allocation(s, big, big_bin);
  EXPECT_EQ(s.in_use_bytes, 4096 + big_bin);
  EXPECT_EQ(s.requested_bytes, 4000 + big);
  EXPECT_EQ(s.peak_in_use_bytes, 4096 + big_bin);
  EXPECT_EQ(s.peak_requested_bytes, 4000 + big);
  EXPECT_EQ(s.peak_reserved_bytes, 4096 + big_bin);

  cuda::count_release(s, 4000, 4096);  // into the cache, as the allocator does after it
  s.cached_bytes += 4096;
  EXPECT_EQ(s.in_use_bytes, big_bin);
  EXPECT_EQ(s.requested_bytes, big);
  EXPECT_EQ(s.peak_requested_bytes, 4000 + big) << "a release lowers no peak";

  s.cached_bytes -= 4096;  // a hit: 3900 B in the cached 4096 B block
  cuda::count_allocation(s, 3900, 4096);
  EXPECT_EQ(s.in_use_bytes, 4096 + big_bin);
  EXPECT_EQ(s.requested_bytes, 3900 + big);
  EXPECT_EQ(s.peak_requested_bytes, 4000 + big) << "3900 < 4000: the peak stays";
  EXPECT_EQ(s.peak_reserved_bytes, 4096 + big_bin) << "a hit takes nothing from the driver";

  cuda::count_release(s, big, big_bin);  // the big block into the cache
  s.cached_bytes += big_bin;
  cuda::count_allocation(s, 2 * MiB, 2 * MiB);  // another bin: a miss while it stays cached
  EXPECT_EQ(s.in_use_bytes, 4096 + 2 * MiB);
  EXPECT_EQ(s.requested_bytes, 3900 + 2 * MiB);
  EXPECT_EQ(s.peak_in_use_bytes, 4096 + 2 * MiB);
  EXPECT_EQ(s.peak_requested_bytes, 3900 + 2 * MiB);
  EXPECT_EQ(s.peak_reserved_bytes, 4096 + 2 * MiB + big_bin) << "cached blocks are held too";
  EXPECT_EQ(s.hits, 0u);
  EXPECT_EQ(s.misses, 0u) << "hits and misses are the allocator's to count";
}

TEST(Bench, Tf32IsRefusedOffCuda) {
  app::BenchConfig c = tiny("cpu");
  c.tf32 = true;
  test::expect_value_error([&] { app::run_bench(c); }, "--tf32 applies to CUDA only");
}

TEST(Bench, CpuRunReportsItsLossesAndNoDeviceMemory) {
  const auto j = nlohmann::json::parse(app::run_bench(tiny("cpu")));
  EXPECT_EQ(j.at("tf32"), false);
  const double first = j.at("loss_first"), last = j.at("loss_last");
  EXPECT_TRUE(std::isfinite(first) && std::isfinite(last));
  EXPECT_GT(first, 1.0) << "ten classes at initialisation: about ln 10";
  EXPECT_FALSE(j.contains("peak_device_mb"));
  EXPECT_FALSE(j.contains("peak_device_reserved_mb"));
  EXPECT_FALSE(j.contains("host_waits_per_step"));
}

// Real GPU only: the allocator counts a request and its bin apart, and tranq bench reports the
// requested peak as peak_device_mb, no more than what it held from the driver.
TEST(BenchCuda, PeakDeviceMbIsTheRequestedPeak) {
  TRANQ_REQUIRE_CUDNN();
  TRANQ_REQUIRE_CACHING_ALLOCATOR();
  const cuda::MemoryStats s0 = cuda::memory_stats();
  {
    const Tensor t = Tensor::empty({(3 << 18) + 1}, DType::f32, Device::cuda());  // 3 MiB + 4 B
    const cuda::MemoryStats s = cuda::memory_stats();
    EXPECT_EQ(s.requested_bytes, s0.requested_bytes + 3 * MiB + 4);
    EXPECT_EQ(s.in_use_bytes, s0.in_use_bytes + 3 * MiB + MiB / 2);  // the 3.5 MiB bin
    EXPECT_GE(s.peak_requested_bytes, s.requested_bytes);
    EXPECT_GE(s.peak_reserved_bytes, s.in_use_bytes + s.cached_bytes);
  }
  EXPECT_EQ(cuda::memory_stats().requested_bytes, s0.requested_bytes);

  const auto j = nlohmann::json::parse(app::run_bench(tiny("cuda")));
  const cuda::MemoryStats s = cuda::memory_stats();
  auto mib = [](size_t b) { return std::round(static_cast<double>(b) / MiB * 10) / 10; };
  EXPECT_EQ(j.at("peak_device_mb").get<double>(), mib(s.peak_requested_bytes));
  EXPECT_EQ(j.at("peak_device_reserved_mb").get<double>(), mib(s.peak_reserved_bytes));
  EXPECT_GT(j.at("peak_device_mb").get<double>(), 0.0);
  EXPECT_LE(j.at("peak_device_mb").get<double>(), j.at("peak_device_reserved_mb").get<double>());
  EXPECT_TRUE(j.contains("host_waits_per_step"));
}
