// ComputePrecision::bf16 for the CPU convolutions: bf16 autocast is defined as the fp32
// convolution of operands rounded to bfloat16 (products of two bf16 values are exact in f32),
// so each function checks the dtypes, rounds its two product operands into copies and runs the
// fp32 kernel of kernels/cpu/conv2d.cpp. The bias and every output stay f32. This is the
// reference the CUDA version (kernels/cuda/conv2d.cu) is tested against.
#include "kernels/bf16.h"
#include "kernels/conv2d.h"

namespace tranq::kernels::cpu::detail {

void conv2d_forward_bf16(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                         const Conv2dParams& p) {
  const char* op = "conv2d_forward";
  check_bf16_dtypes(op, {&x, &w, &bias, &y});
  cpu::conv2d_forward(bf16_rounded_copy(x, op, "x"), bf16_rounded_copy(w, op, "weight"), bias, y, p,
                      ComputePrecision::fp32);
}

void conv2d_backward_data_bf16(const Tensor& dy, const Tensor& w, const Tensor& dx,
                               const Conv2dParams& p) {
  const char* op = "conv2d_backward_data";
  check_bf16_dtypes(op, {&dy, &w, &dx});
  cpu::conv2d_backward_data(bf16_rounded_copy(dy, op, "dy"), bf16_rounded_copy(w, op, "weight"), dx,
                            p, ComputePrecision::fp32);
}

void conv2d_backward_weight_bf16(const Tensor& x, const Tensor& dy, const Tensor& dw,
                                 const Conv2dParams& p) {
  const char* op = "conv2d_backward_weight";
  check_bf16_dtypes(op, {&x, &dy, &dw});
  cpu::conv2d_backward_weight(bf16_rounded_copy(x, op, "x"), bf16_rounded_copy(dy, op, "dy"), dw, p,
                              ComputePrecision::fp32);
}

}  // namespace tranq::kernels::cpu::detail
