#pragma once
// One cuDNN handle per device, created on first use and kept for the process (destroying it at
// exit could run after the driver has shut down), with a mutex that serialises its use: the
// stream set on a handle and the calls made through it belong to one caller at a time.
//
// Only kernels/cuda/*.cu include this.
#include <cudnn.h>

#include <array>
#include <memory>
#include <mutex>

#include "kernels/cuda/common.cuh"

namespace tranq::kernels::cuda {

struct CudnnHandle {
  std::mutex mutex;  // hold while the handle is configured and used
  cudnnHandle_t handle = nullptr;
};

// The handle of `device` (lock its mutex around use).
inline CudnnHandle& cudnn_handle(int device) {
  constexpr int kMaxDevices = 64;
  TRANQ_CHECK_AS(DeviceError, device >= 0 && device < kMaxDevices,
                 "cuDNN: CUDA device index {} out of range", device);
  static auto* handles = new std::array<std::unique_ptr<CudnnHandle>, kMaxDevices>();
  static std::mutex create_mutex;
  std::lock_guard<std::mutex> lock(create_mutex);
  auto& slot = (*handles)[static_cast<size_t>(device)];
  if (!slot) {
    auto h = std::make_unique<CudnnHandle>();
    ::tranq::cuda::DeviceGuard guard(device);
    TRANQ_CUDNN_CHECK(cudnnCreate(&h->handle));
    slot = std::move(h);
  }
  return *slot;
}

}  // namespace tranq::kernels::cuda
