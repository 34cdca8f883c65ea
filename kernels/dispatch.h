#pragma once
// The facade side of an op: pick the backend from the tensor's device. Backends that lack an
// op say so by name instead of failing somewhere deeper.
#include <initializer_list>

#include "core/tensor.h"
#include "tranq/config.h"

namespace tranq::kernels {

[[noreturn]] void unsupported_device(const char* op, const Tensor& t);

// Calls cpu::op(args...) for CPU tensors; other devices get a DeviceError naming the op.
#define TRANQ_DISPATCH(op, device_tensor, ...)                          \
  do {                                                                  \
    if ((device_tensor).device().is_cpu()) return cpu::op(__VA_ARGS__); \
    ::tranq::kernels::unsupported_device(#op, device_tensor);           \
  } while (0)

// For ops with a CUDA version (kernels/cuda/<op>.cu, declared as cuda::op in the op's header):
// cpu::op for CPU tensors, cuda::op for CUDA tensors when the backend is compiled in, a
// DeviceError naming the op otherwise. Builds without CUDA never reference cuda::op.
#if TRANQ_WITH_CUDA
#define TRANQ_DISPATCH_CUDA(op, device_tensor, ...)                       \
  do {                                                                    \
    if ((device_tensor).device().is_cpu()) return cpu::op(__VA_ARGS__);   \
    if ((device_tensor).device().is_cuda()) return cuda::op(__VA_ARGS__); \
    ::tranq::kernels::unsupported_device(#op, device_tensor);             \
  } while (0)
#else
#define TRANQ_DISPATCH_CUDA(op, device_tensor, ...) TRANQ_DISPATCH(op, device_tensor, __VA_ARGS__)
#endif

// Every defined tensor in `others` must be on ref's device: a backend reads all of an op's
// tensors through its own kind of pointer, so a CPU tensor handed to a CUDA kernel (or the
// reverse) would fault or read garbage. ValueError naming the op, like the other checks.
inline void check_same_device(const char* op, const Tensor& ref,
                              std::initializer_list<const Tensor*> others) {
  if (!ref.defined()) return;  // the backend's own checks name the missing argument
  for (const Tensor* t : others) {
    if (!t->defined()) continue;
    TRANQ_CHECK(t->device() == ref.device(),
                "{}: all tensors must be on one device; got {} and {} (move them with .to())", op,
                tensor_str(ref), tensor_str(*t));
  }
}

// Elementwise ops may write their output over an input (in place), but only over the very same
// view: an output that overlaps an input in part would overwrite elements before they are read,
// in an order that differs between the CPU loop and the CUDA grid. PyTorch refuses the same.
// ValueError naming the op and what to do; undefined or empty tensors never overlap. Every
// write counts as an in-place write for autograd (as torch's out= does): refused on a tensor
// with autograd history (check_in_place_write), and counted in the output's version, so a graph
// that saved the old values cannot run backward with the new ones.
void admit_output(const char* op, const Tensor& out, std::initializer_list<const Tensor*> inputs);

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
