// Copies of strided views to, from and between devices go through a host mirror (backends
// copy contiguous bytes only). Checked here with a stand-in device backend whose memory is host
// memory, registered as the CUDA backend when no real GPU is present.
#include <gtest/gtest.h>

#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"
#include "fake_device.h"
#include "kernels/cuda_runtime.h"

using namespace tranq;

namespace {

class DeviceCopy : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::use_fake_cuda_unless_real()) GTEST_SKIP() << "a real CUDA device is present";
  }
};

Tensor iota(const Shape& shape) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::from_vector(v, shape);
}

}  // namespace

TEST_F(DeviceCopy, StridedDeviceViewBecomesContiguous) {
  const Tensor host = iota({3, 4});
  const Tensor dev = host.to(Device::cuda());
  const Tensor t = dev.transpose(0, 1);  // [4, 3], strided
  ASSERT_FALSE(t.is_contiguous());
  const Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_TRUE(c.device().is_cuda());
  EXPECT_EQ(c.to(Device::cpu()).to_vector<float>(),
            host.transpose(0, 1).contiguous().to_vector<float>());
  // A strided view straight to the host too.
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(),
            host.transpose(0, 1).contiguous().to_vector<float>());
}

TEST_F(DeviceCopy, WritingIntoAStridedDeviceViewKeepsTheRest) {
  const Tensor dev = Tensor::zeros({2, 3}, DType::f32, Device::cuda());
  const Tensor col = dev.narrow(1, 1, 1);  // [2, 1], stride 3
  ASSERT_FALSE(col.is_contiguous());
  col.copy_(Tensor::from_vector(std::vector<float>{7, 8}, {2, 1}));
  EXPECT_EQ(dev.to(Device::cpu()).to_vector<float>(), (std::vector<float>{0, 7, 0, 0, 8, 0}));
  const Tensor row_view = dev.transpose(0, 1);  // [3, 2] strided; fill from a strided host view
  row_view.copy_(iota({2, 3}).transpose(0, 1));
  EXPECT_EQ(dev.to(Device::cpu()).to_vector<float>(), iota({2, 3}).to_vector<float>());
}

// A non-zero fill of a contiguous device tensor is one backend fill of the element's bytes (no
// host copy); a strided view is filled through the host mirror and keeps the rest.
TEST_F(DeviceCopy, FillsUseTheBackendsPatternFill) {
  const int before = test::fake_device().fills;
  const Tensor d = Tensor::zeros({2, 3}, DType::f64, Device::cuda());
  d.fill_(2.5);
  EXPECT_EQ(test::fake_device().fills, before + 1);
  EXPECT_EQ(d.to(Device::cpu()).to_vector<double>(), std::vector<double>(6, 2.5));
  const Tensor i8 = Tensor::ones({5}, DType::i8, Device::cuda());
  EXPECT_EQ(i8.to(Device::cpu()).to_vector<int8_t>(), std::vector<int8_t>(5, 1));
  d.narrow(1, 1, 1).fill_(-1.0);
  EXPECT_EQ(d.to(Device::cpu()).to_vector<double>(),
            (std::vector<double>{2.5, -1.0, 2.5, 2.5, -1.0, 2.5}));
}
