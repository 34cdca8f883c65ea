#pragma once
// The facade side of an op: pick the backend from the tensor's device. Backends that lack an
// op say so by name instead of failing somewhere deeper.
#include "core/tensor.h"

namespace tranq::kernels {

[[noreturn]] void unsupported_device(const char* op, const Tensor& t);

// Calls cpu::op(args...) for CPU tensors; other devices get a DeviceError naming the op.
#define TRANQ_DISPATCH(op, device_tensor, ...)                                \
  do {                                                                        \
    if ((device_tensor).device().is_cpu()) return cpu::op(__VA_ARGS__);       \
    ::tranq::kernels::unsupported_device(#op, device_tensor);                 \
  } while (0)

// Runs f(T{}) with T = float or double for the tensor's dtype; other dtypes throw.
template <class F>
void dispatch_floating(DType t, const char* op, F&& f) {
  if (t == DType::f32) {
    f(float{});
  } else if (t == DType::f64) {
    f(double{});
  } else {
    TRANQ_THROW(ValueError, "{}: expected f32 or f64 tensors, got {}", op, dtype_name(t));
  }
}

}  // namespace tranq::kernels
