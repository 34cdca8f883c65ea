// DevicePrefetcher: batches uploaded on a copy stream reach each step intact while the copy
// stream runs ahead of the compute stream, buffers are reused two steps later unless the caller
// still holds them, and a warmed-up upload makes the host wait nowhere. On the CPU batches pass
// through; without a GPU a CUDA prefetcher is a "no CUDA device" error.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "datasets/device_prefetcher.h"
#include "gradcheck.h"
#include "kernels/cuda_runtime.h"
#include "layers/functional.h"

using namespace tranq;

namespace {

// A batch in page-locked memory (as the loader makes it on a GPU machine) whose values name
// the step: image element i is step * 1000 + i, every label is step.
data::Batch make_batch(int step, int64_t n, bool pinned) {
  data::Batch b;
  b.images = pinned ? Tensor::empty_pinned({n, 2, 4, 4}, DType::f32)
                    : Tensor::empty({n, 2, 4, 4}, DType::f32);
  b.labels = pinned ? Tensor::empty_pinned({n}, DType::i32) : Tensor::empty({n}, DType::i32);
  float* im = b.images.data<float>();
  for (int64_t i = 0; i < b.images.numel(); ++i) im[i] = static_cast<float>(step * 1000 + i);
  int32_t* lb = b.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) lb[i] = step;
  b.index = step;
  return b;
}

void expect_batch(const Tensor& images, const Tensor& labels, int step, const std::string& what) {
  const std::vector<float> im = test::to_host(images).to_vector<float>();
  for (size_t i = 0; i < im.size(); ++i)
    ASSERT_EQ(im[i], static_cast<float>(step * 1000 + static_cast<int64_t>(i)))
        << what << ": step " << step << " image element " << i;
  for (int32_t l : test::to_host(labels).to_vector<int32_t>()) ASSERT_EQ(l, step) << what;
}

// Milliseconds of GPU work on the current stream: what is queued after it is still pending
// while the copy stream goes on.
void long_work() {
  static const Tensor a =
      test::random_tensor({2048, 2048}, 11, -0.02, 0.02, DType::f32).to(Device::cuda());
  Tensor x = a;
  for (int i = 0; i < 12; ++i) x = ops::matmul(x, a);
}

}  // namespace

TEST(CudaPrefetch, OnTheCpuBatchesPassThrough) {
  data::DevicePrefetcher pf(Device::cpu());
  const data::Batch b = make_batch(3, 5, /*pinned=*/false);
  const data::DevicePrefetcher::DeviceBatch d = pf.upload(b);
  EXPECT_EQ(d.images.raw_data(), b.images.raw_data());
  EXPECT_EQ(d.labels.raw_data(), b.labels.raw_data());
  EXPECT_EQ(pf.fresh_buffers(), 0);
}

TEST(CudaPrefetch, WithoutDeviceIsNoCudaDevice) {
  std::string why;
  if (cuda::device_count(&why) > 0) GTEST_SKIP() << "a CUDA device is present";
  try {
    data::DevicePrefetcher pf(Device::cuda());
    ADD_FAILURE() << "a CUDA prefetcher must throw without a device";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cuda::Event(0), DeviceError);
  EXPECT_THROW(cuda::Stream(0, /*blocking=*/false), DeviceError);
  EXPECT_THROW(cuda::Stream::current(0), DeviceError);
}

TEST(CudaPrefetch, EachStepSeesItsOwnBatchWhileTheCopyStreamRunsAhead) {
  TRANQ_REQUIRE_CUDA();
  TRANQ_REQUIRE_CACHING_ALLOCATOR();
  data::DevicePrefetcher pf(Device::cuda());
  std::vector<Tensor> seen_images, seen_labels;
  uint64_t waits_after_warmup = 0;
  const int steps = 8;
  for (int step = 0; step < steps; ++step) {
    if (step == 2) waits_after_warmup = cuda::host_wait_count();
    data::DevicePrefetcher::DeviceBatch d;
    {
      const data::Batch b = make_batch(step, 6, /*pinned=*/true);
      d = pf.upload(b);
    }  // the host batch is freed at once, with its copy possibly still queued
    // The step reads its batch only after milliseconds of work: an upload two steps on that
    // did not wait for this step would overwrite the buffer first.
    long_work();
    seen_images.push_back(d.images.clone());
    seen_labels.push_back(d.labels.clone());
  }
  EXPECT_EQ(cuda::host_wait_count(), waits_after_warmup) << "a warmed-up upload waited";
  EXPECT_EQ(pf.fresh_buffers(), 2) << "the two buffers must be reused";
  for (int step = 0; step < steps; ++step)
    expect_batch(seen_images[step], seen_labels[step], step, "after the loop");
}

TEST(CudaPrefetch, HeldBuffersAndNewShapesGetFreshBuffers) {
  TRANQ_REQUIRE_CUDA();
  data::DevicePrefetcher pf(Device::cuda());
  const data::DevicePrefetcher::DeviceBatch held = pf.upload(make_batch(0, 4, true));
  const void* step1_buffer = pf.upload(make_batch(1, 4, true)).images.raw_data();
  EXPECT_EQ(pf.fresh_buffers(), 2);
  // Step 0's buffer is still held: step 2 must not overwrite it.
  const data::DevicePrefetcher::DeviceBatch d2 = pf.upload(make_batch(2, 4, true));
  EXPECT_EQ(pf.fresh_buffers(), 3);
  EXPECT_NE(d2.images.raw_data(), held.images.raw_data());
  expect_batch(held.images, held.labels, 0, "held");
  expect_batch(d2.images, d2.labels, 2, "fresh");
  // Step 1's buffer is free again (its handles were dropped): reused.
  {
    const data::DevicePrefetcher::DeviceBatch d3 = pf.upload(make_batch(3, 4, true));
    EXPECT_EQ(d3.images.raw_data(), step1_buffer);
    EXPECT_EQ(pf.fresh_buffers(), 3);
    expect_batch(d3.images, d3.labels, 3, "reused");
  }
  // A smaller last batch: a buffer of its shape.
  const data::DevicePrefetcher::DeviceBatch d4 = pf.upload(make_batch(4, 3, true));
  EXPECT_EQ(pf.fresh_buffers(), 4);
  expect_batch(d4.images, d4.labels, 4, "smaller");
  // Host memory that is not page-locked is copied synchronously, and still right.
  const data::DevicePrefetcher::DeviceBatch d5 = pf.upload(make_batch(5, 3, false));
  expect_batch(d5.images, d5.labels, 5, "pageable");
  // A batch already on the GPU is handed through, not copied.
  data::Batch on_gpu = make_batch(6, 3, false);
  on_gpu.images = test::to_cuda(on_gpu.images);
  on_gpu.labels = test::to_cuda(on_gpu.labels);
  const data::DevicePrefetcher::DeviceBatch d6 = pf.upload(on_gpu);
  EXPECT_EQ(d6.images.raw_data(), on_gpu.images.raw_data());
  EXPECT_EQ(d6.labels.raw_data(), on_gpu.labels.raw_data());
}
