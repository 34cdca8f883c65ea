// The CUDA device backend: skipped, with the reason, where no GPU is usable.
#include <gtest/gtest.h>

#include "core/tensor.h"
#include "kernels/cuda_runtime.h"

using namespace tranq;

TEST(CudaRuntime, WithoutDeviceInitThrowsNoCudaDevice) {
  std::string why;
  if (cuda::device_count(&why) > 0) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(why.empty());
  try {
    cuda::init();
    FAIL() << "init() must throw without a device";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tensor::empty({2}, DType::f32, Device::cuda()), DeviceError);
}

TEST(CudaRuntime, HostDeviceRoundTrip) {
  std::string why;
  if (cuda::device_count(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
  cuda::init();
  Tensor h = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor d = h.to(Device::cuda());
  EXPECT_TRUE(d.device().is_cuda());
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), h.to_vector<float>());
  Tensor z = Tensor::zeros({1000}, DType::f32, Device::cuda());
  for (float v : z.to_vector<float>()) ASSERT_EQ(v, 0.0f);
  Tensor f = Tensor::full({4}, 2.5, DType::f32, Device::cuda());
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{2.5f, 2.5f, 2.5f, 2.5f}));
}
