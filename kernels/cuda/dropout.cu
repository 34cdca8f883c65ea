// CUDA dropout. The mask is drawn on the device from the host Rng's (key, counter): element i is
// Rng draw number counter + i, mix64(key ^ mix64(counter + i)) (core/rng.h), turned into a
// uniform double exactly as Rng::uniform does (53 bits times 2^-53, both exact), so the mask
// equals kernels::cpu::fill_dropout_mask's byte for byte. The host Rng then advances by n, as
// there. dropout_apply is the CPU's x * (mask * scale), two correctly rounded products.
#include "core/rng.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/dropout.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;
using ::tranq::cuda::mul_rn;

// core/rng.cpp's mix64 (SplitMix64's finaliser), in 64-bit unsigned arithmetic as there.
__device__ inline uint64_t mix64_device(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

__global__ void mask_kernel(uint8_t* mask, int64_t n, uint64_t key, uint64_t start, double p) {
  TRANQ_GRID_STRIDE_LOOP(i, n) {
    const uint64_t bits = mix64_device(key ^ mix64_device(start + static_cast<uint64_t>(i)));
    const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
    mask[i] = u >= p ? 1 : 0;
  }
}

template <class T>
__global__ void apply_kernel(const T* x, const uint8_t* mask, T s, T* out, int64_t n) {
  TRANQ_GRID_STRIDE_LOOP(i, n) out[i] = mul_rn(x[i], mul_rn(static_cast<T>(mask[i]), s));
}

}  // namespace

void fill_dropout_mask(const Tensor& mask, double p, Rng& rng) {
  const char* op = "fill_dropout_mask";
  check_defined(mask, op, "mask");
  TRANQ_CHECK(mask.dtype() == DType::u8 && mask.is_contiguous(),
              "fill_dropout_mask: mask must be a contiguous u8 tensor, got {}", tensor_str(mask));
  TRANQ_CHECK(p >= 0.0 && p <= 1.0, "fill_dropout_mask: p must lie in [0, 1], got {}", p);
  check_on_device(op, mask.device(), {});
  const int64_t n = mask.numel();
  const uint64_t key = rng.key(), start = rng.counter();
  if (n > 0) {
    const int dev = mask.device().index;
    DeviceGuard guard(dev);
    mask_kernel<<<grid_for(n), kThreads, 0, current_stream(dev)>>>(mask.data<uint8_t>(), n, key,
                                                                   start, p);
    TRANQ_CUDA_CHECK_LAUNCH();
  }
  rng.set_state(key, start + static_cast<uint64_t>(n));
}

void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out) {
  const char* op = "dropout_apply";
  check_defined(x, op, "x");
  check_defined(mask, op, "mask");
  check_defined(out, op, "out");
  check_same_shape(x, mask, op);
  check_same_shape(x, out, op);
  TRANQ_CHECK(mask.dtype() == DType::u8 && out.dtype() == x.dtype(),
              "{}: expected a u8 mask and out of x's dtype, got mask {}, x {}, out {}", op,
              tensor_str(mask), tensor_str(x), tensor_str(out));
  TRANQ_CHECK(x.is_contiguous() && mask.is_contiguous() && out.is_contiguous(),
              "{}: needs contiguous tensors", op);
  check_on_device(op, x.device(), {{"mask", &mask}, {"out", &out}});
  const int64_t n = x.numel();
  if (n == 0) return;
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    apply_kernel<T><<<grid_for(n), kThreads, 0, current_stream(dev)>>>(
        x.data<T>(), mask.data<uint8_t>(), static_cast<T>(scale), out.data<T>(), n);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace tranq::kernels::cuda
