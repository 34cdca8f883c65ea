// CUDA memory: the caching device allocator's size bins (pure arithmetic, checked in every
// build), block reuse and statistics, out-of-memory errors, pinned host memory, host<->device
// round trips of every dtype, and the "no CUDA device" errors where there is no GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda_runtime.h"

using namespace tranq;

TEST(CudaMemory, BlockSizeBins) {
  constexpr size_t MiB = size_t{1} << 20;
  EXPECT_EQ(cuda::device_block_size(0), 0u);
  EXPECT_EQ(cuda::device_block_size(1), 512u);
  EXPECT_EQ(cuda::device_block_size(512), 512u);
  EXPECT_EQ(cuda::device_block_size(513), 1024u);
  EXPECT_EQ(cuda::device_block_size(MiB - 1), MiB);
  EXPECT_EQ(cuda::device_block_size(MiB), MiB);
  EXPECT_EQ(cuda::device_block_size(MiB + 1), MiB + MiB / 4);
  EXPECT_EQ(cuda::device_block_size(MiB + MiB / 4 + 1), MiB + MiB / 2);
  EXPECT_EQ(cuda::device_block_size(2 * MiB - 1), 2 * MiB);
  EXPECT_EQ(cuda::device_block_size(2 * MiB), 2 * MiB);
  EXPECT_EQ(cuda::device_block_size(2 * MiB + 1), 2 * MiB + MiB / 2);
  EXPECT_EQ(cuda::device_block_size(3 * MiB), 3 * MiB);
  EXPECT_EQ(cuda::device_block_size((size_t{1} << 30) + 1), (size_t{5} << 30) / 4);
  // Every size: a bin holds it, wastes under 512 B (small) or under a quarter (large), and is
  // its own bin.
  for (size_t b = 1; b < 64 * MiB; b = b * 3 / 2 + 7) {
    const size_t bin = cuda::device_block_size(b);
    ASSERT_GE(bin, b) << b;
    if (b <= MiB) {
      ASSERT_LT(bin - b, 512u) << b;
      ASSERT_EQ(bin % 512, 0u) << b;
    } else {
      ASSERT_LT(bin - b, bin / 4) << b;
    }
    ASSERT_EQ(cuda::device_block_size(bin), bin) << b;
  }
}

TEST(CudaMemory, WithoutDeviceEntryPointsThrowNoCudaDevice) {
  std::string why;
  if (cuda::device_count(&why) > 0) GTEST_SKIP() << "a CUDA device is present";
  auto expect_no_device = [](auto&& f, const char* what) {
    try {
      f();
      ADD_FAILURE() << what << " must throw without a device";
    } catch (const DeviceError& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    }
  };
  expect_no_device([] { cuda::pinned_allocator(); }, "pinned_allocator");
  expect_no_device([] { cuda::memory_stats(); }, "memory_stats");
  expect_no_device([] { cuda::empty_cache(); }, "empty_cache");
  expect_no_device([] { cuda::synchronize(); }, "synchronize");
}

TEST(CudaMemory, CachingAllocatorReusesBlocksAndCounts) {
  TRANQ_REQUIRE_CUDA();
  TRANQ_REQUIRE_CACHING_ALLOCATOR();
  cuda::empty_cache();
  const cuda::MemoryStats s0 = cuda::memory_stats();
  EXPECT_EQ(s0.cached_bytes, 0u);
  const void* first = nullptr;
  {
    Tensor t = Tensor::empty({1000}, DType::f32, Device::cuda());  // 4000 B: the 4096 B bin
    first = t.raw_data();
    const cuda::MemoryStats s = cuda::memory_stats();
    EXPECT_EQ(s.in_use_bytes, s0.in_use_bytes + 4096);
    EXPECT_EQ(s.misses, s0.misses + 1);
    EXPECT_EQ(s.hits, s0.hits);
    EXPECT_GE(s.peak_in_use_bytes, s.in_use_bytes);
  }
  const cuda::MemoryStats s1 = cuda::memory_stats();
  EXPECT_EQ(s1.in_use_bytes, s0.in_use_bytes);
  EXPECT_EQ(s1.cached_bytes, 4096u);
  {
    Tensor t = Tensor::empty({975}, DType::f32, Device::cuda());  // 3900 B: the same bin
    EXPECT_EQ(t.raw_data(), first);
    const cuda::MemoryStats s = cuda::memory_stats();
    EXPECT_EQ(s.hits, s1.hits + 1);
    EXPECT_EQ(s.misses, s1.misses);
    EXPECT_EQ(s.cached_bytes, 0u);
  }
  {
    Tensor big = Tensor::empty({3 << 20}, DType::u8, Device::cuda());  // another bin: a miss
    const cuda::MemoryStats s = cuda::memory_stats();
    EXPECT_EQ(s.misses, s1.misses + 1);
    EXPECT_EQ(s.in_use_bytes, s0.in_use_bytes + (size_t{3} << 20));
    EXPECT_GE(s.peak_in_use_bytes, s.in_use_bytes);
  }
  EXPECT_EQ(cuda::memory_stats().cached_bytes, 4096u + (size_t{3} << 20));
  // Returning blocks to the driver (cudaFree) waits for the device: counted once per release;
  // an empty cache has nothing to free and nothing to wait for.
  const uint64_t waits = cuda::host_wait_count();
  cuda::empty_cache();
  EXPECT_EQ(cuda::memory_stats().cached_bytes, 0u);
  EXPECT_EQ(cuda::host_wait_count(), waits + 1);
  cuda::empty_cache();
  EXPECT_EQ(cuda::host_wait_count(), waits + 1);
}

TEST(CudaMemory, OutOfMemoryIsDeviceErrorAndAllocatorStillWorks) {
  TRANQ_REQUIRE_CUDA();
  try {
    Tensor huge = Tensor::empty({int64_t{1} << 50}, DType::u8, Device::cuda());  // 1 PiB
    FAIL() << "a 1 PiB allocation must fail";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("cudaMalloc"), std::string::npos) << e.what();
  }
  Tensor t = Tensor::full({10}, 1.5, DType::f32, Device::cuda());
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(10, 1.5f));
}

TEST(CudaMemory, HostDeviceRoundTripEveryDtype) {
  TRANQ_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64, DType::i8, DType::u8, DType::i32, DType::i64})
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000003}}) {
      std::vector<double> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        v[i] = static_cast<double>((i * 37) % 200) - (dt == DType::u8 ? 0 : 100);
      const Tensor h = test::tensor_of(v, {n}, dt);
      const Tensor d = h.to(Device::cuda());
      EXPECT_TRUE(d.device().is_cuda());
      EXPECT_TRUE(test::same_bits(d, h)) << dtype_name(dt) << " n=" << n;
      const Tensor d2 = d.clone();  // device to device
      EXPECT_TRUE(test::same_bits(d2, h)) << dtype_name(dt) << " n=" << n << " clone";
      const Tensor z = Tensor::zeros({n}, dt, Device::cuda());
      EXPECT_TRUE(test::same_bits(z, Tensor::zeros({n}, dt))) << dtype_name(dt) << " zeros";
    }
}

TEST(CudaMemory, PinnedAllocatorGivesReusableHostMemory) {
  TRANQ_REQUIRE_CUDA();
  Allocator& a = cuda::pinned_allocator();
  EXPECT_EQ(a.allocate(0), nullptr);
  const size_t bytes = size_t{1} << 20;
  auto* p = static_cast<unsigned char*>(a.allocate(bytes));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(i * 7);
  for (size_t i = 0; i < bytes; i += 4093) ASSERT_EQ(p[i], static_cast<unsigned char>(i * 7));
  a.deallocate(p, bytes);
  void* q = a.allocate(bytes);  // cached by size: the same block again
  EXPECT_EQ(q, p);
  a.deallocate(q, bytes);
  // init() made it core's pinned allocator (Tensor::empty_pinned, the loader's batches).
  EXPECT_EQ(&tranq::pinned_allocator(), &a);
}
