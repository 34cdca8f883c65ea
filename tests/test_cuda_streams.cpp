// Streams and copies that do not wait: ops under a StreamGuard run on that stream and give the
// default stream's results; guards nest and restore; freed blocks stay with their stream; one
// stream waits for another; a non-blocking copy from pinned memory delivers the bytes even when
// the host frees and reuses its memory at once; copies within a GPU are ordered without a wait.
// Without a GPU: the "no CUDA device" errors, and non_blocking copies between host tensors.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "cuda_test_util.h"
#include "gradcheck.h"
#include "kernels/cuda_runtime.h"
#include "layers/functional.h"

using namespace tranq;

namespace {

void expect_no_device(const std::function<void()>& f, const char* what) {
  try {
    f();
    ADD_FAILURE() << what << " must throw without a device";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
}

// GEMM work queued on the current stream. cuBLAS promises identical bits only on one stream,
// so results made on different streams are compared to a tolerance.
Tensor busy_work(const Tensor& a, int rounds = 8) {
  Tensor x = a;
  for (int i = 0; i < rounds; ++i) x = ops::matmul(x, a);
  return x;
}

// Milliseconds of GPU work (a chain of 2048^2 GEMMs), so that what is queued after it is still
// pending while the host goes on.
Tensor long_work() {
  static const Tensor a =
      test::random_tensor({2048, 2048}, 11, -0.02, 0.02, DType::f32).to(Device::cuda());
  return busy_work(a, 16);
}

}  // namespace

TEST(CudaStreams, WithoutDeviceStreamsThrowNoCudaDevice) {
  std::string why;
  if (cuda::device_count(&why) > 0) GTEST_SKIP() << "a CUDA device is present";
  expect_no_device([] { cuda::Stream s(0); }, "Stream");
  expect_no_device([] { cuda::Stream::legacy_default(0); }, "Stream::legacy_default");
  EXPECT_EQ(cuda::current_stream_handle(0), nullptr);
  expect_no_device([] { Tensor::ones({4}).to(Device::cuda(), true); }, "to(cuda, non_blocking)");
}

TEST(CudaStreams, NonBlockingBetweenHostTensorsIsAPlainTo) {
  const Tensor a = test::random_tensor({3, 5}, 1, -1, 1, DType::f32);
  EXPECT_TRUE(a.to(Device::cpu(), true).same_as(a));
  const Tensor t = a.transpose(0, 1);
  EXPECT_TRUE(t.to(Device::cpu(), true).same_as(t));
}

TEST(CudaStreams, OpsUnderAGuardRunThereAndMatchTheDefaultStream) {
  TRANQ_REQUIRE_CUDA();
  const Tensor a = test::random_tensor({64, 64}, 2, -1, 1, DType::f32).to(Device::cuda());
  const Tensor b = test::random_tensor({64, 64}, 3, -1, 1, DType::f32).to(Device::cuda());
  const Tensor expect = ops::relu(ops::add(ops::matmul(a, b), a));
  cuda::Stream s(0), inner(0);
  EXPECT_NE(s.handle(), nullptr);
  EXPECT_EQ(cuda::current_stream_handle(0), nullptr);
  Tensor got;
  {
    cuda::StreamGuard g(s);
    EXPECT_EQ(cuda::current_stream_handle(0), s.handle());
    {
      cuda::StreamGuard g2(inner);
      EXPECT_EQ(cuda::current_stream_handle(0), inner.handle());
    }
    EXPECT_EQ(cuda::current_stream_handle(0), s.handle());
    got = ops::relu(ops::add(ops::matmul(a, b), a));
  }
  EXPECT_EQ(cuda::current_stream_handle(0), nullptr);
  s.synchronize();
  test::expect_close(got, expect, 1e-5, "ops under a stream guard");
  // Moving a stream moves ownership; the moved-from one is empty.
  cuda::Stream moved(std::move(s));
  EXPECT_EQ(s.handle(), nullptr);
  EXPECT_NE(moved.handle(), nullptr);
  moved.synchronize();
}

TEST(CudaStreams, FreedBlocksAreReusedOnlyOnTheirStream) {
  TRANQ_REQUIRE_CUDA();
  TRANQ_REQUIRE_CACHING_ALLOCATOR();
  cuda::Stream s(0);
  const int64_t n = 3 * 1000 * 1000 + 17;  // a bin size nothing else in this test uses
  {
    cuda::StreamGuard g(s);
    Tensor t = Tensor::empty({n}, DType::f32, Device::cuda());
  }
  const cuda::MemoryStats before = cuda::memory_stats(0);
  { Tensor t = Tensor::empty({n}, DType::f32, Device::cuda()); }  // default stream: a new block
  const cuda::MemoryStats mid = cuda::memory_stats(0);
  EXPECT_EQ(mid.misses, before.misses + 1);
  {
    cuda::StreamGuard g(s);
    Tensor t = Tensor::empty({n}, DType::f32, Device::cuda());  // s: its own block again
  }
  const cuda::MemoryStats after = cuda::memory_stats(0);
  EXPECT_EQ(after.misses, mid.misses);
  EXPECT_EQ(after.hits, mid.hits + 1);
}

TEST(CudaStreams, WaitOrdersOneStreamAfterAnother) {
  TRANQ_REQUIRE_CUDA();
  const Tensor a = test::random_tensor({512, 512}, 4, -0.05, 0.05, DType::f32).to(Device::cuda());
  const Tensor expect = busy_work(a);
  cuda::Stream producer(0), consumer(0);
  Tensor produced, consumed;
  {
    cuda::StreamGuard g(producer);
    produced = busy_work(a);
  }
  consumer.wait(producer);
  {
    cuda::StreamGuard g(consumer);
    consumed = produced.clone();  // reads what the producer wrote
  }
  consumer.synchronize();
  test::expect_close(consumed, expect, 1e-5, "read after wait()");
  producer.synchronize();  // `produced` came from the producer's free lists
}

TEST(CudaStreams, NonBlockingCopyFromPinnedMemorySurvivesImmediateReuse) {
  TRANQ_REQUIRE_CUDA();
  TRANQ_REQUIRE_CACHING_ALLOCATOR();
  const int64_t n = 1 << 20;
  std::vector<Tensor> on_device;
  for (int round = 0; round < 6; ++round) {
    Tensor host = Tensor::empty_pinned({n}, DType::i32);
    int32_t* p = host.data<int32_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(i * 3 + round);
    long_work();  // the copy below queues behind milliseconds of work
    const uint64_t waits = cuda::host_wait_count();
    on_device.push_back(host.to(Device::cuda(), true));
    EXPECT_EQ(cuda::host_wait_count(), waits) << "the upload from pinned memory waited";
    host = Tensor();  // freed while the copy is still queued
    // A new pinned tensor of the same size must not be the block the copy still reads.
    Tensor other = Tensor::empty_pinned({n}, DType::i32);
    std::memset(other.raw_data(), 0xab, other.nbytes());
  }
  for (int round = 0; round < 6; ++round) {
    const std::vector<int32_t> v = on_device[round].to(Device::cpu()).to_vector<int32_t>();
    for (int64_t i = 0; i < n; i += 997)
      ASSERT_EQ(v[i], static_cast<int32_t>(i * 3 + round)) << "round " << round << " [" << i << "]";
  }
  // Pageable memory with non_blocking: copied synchronously, still correct.
  const Tensor pageable = Tensor::from_vector<int32_t>({1, 2, 3}, {3});
  EXPECT_EQ(pageable.to(Device::cuda(), true).to(Device::cpu()).to_vector<int32_t>(),
            (std::vector<int32_t>{1, 2, 3}));
}

TEST(CudaStreams, CopiesWithinTheGpuNeedNoWait) {
  TRANQ_REQUIRE_CUDA();
  TRANQ_REQUIRE_CACHING_ALLOCATOR();
  const Tensor a = test::random_tensor({512, 512}, 6, -0.05, 0.05, DType::f32).to(Device::cuda());
  Tensor src = busy_work(a);
  const Tensor expect = src.to(Device::cpu());
  Tensor src2 = busy_work(a);
  Tensor copy = Tensor::empty_like(src2);
  const uint64_t waits = cuda::host_wait_count();
  copy.copy_(src2);
  EXPECT_EQ(cuda::host_wait_count(), waits) << "a copy within the GPU waited";
  src2 = Tensor();  // freed: its block is reused by the next allocation, ordered after the copy
  Tensor reuse = Tensor::zeros({512, 512}, DType::f32, Device::cuda());
  EXPECT_TRUE(test::same_bits(copy, expect));
  EXPECT_TRUE(test::same_bits(reuse, Tensor::zeros({512, 512})));
}
