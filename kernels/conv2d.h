#pragma once
// 2-D convolution (cross-correlation, as in PyTorch) on contiguous NCHW tensors with OIHW
// weights. Outputs are caller-allocated and overwritten (never accumulated into).
//   x  [N, C, H, W]          w  [O, C/groups, KH, KW]       bias [O] (optional)
//   y  [N, O, OH, OW]        OH = (H + 2*pad_h - dilation_h*(KH-1) - 1) / stride_h + 1
#include <cstdint>

#include "core/tensor.h"
#include "kernels/precision.h"

namespace tranq::kernels {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// Output shape for input x and weight w; throws ValueError on inconsistent shapes or params.
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);

// The operand checks of both backends' conv2d functions (which may also be called directly):
// t is defined, floating point, contiguous and of ref's dtype and device; t has shape expected.
void check_conv2d_operand(const Tensor& t, const Tensor& ref, const char* op, const char* arg);
void check_conv2d_shape(const Tensor& t, const Shape& expected, const char* op, const char* arg);

// Every size a backend needs, derived once (and validated) from the shapes and params.
struct Conv2dGeometry {
  Conv2dGeometry(const Shape& x, const Shape& w, const Conv2dParams& params);

  int64_t N, C, H, W;  // input
  int64_t O, KH, KW;   // weight
  int64_t OH, OW;      // output
  int64_t G, Cg, Og;   // groups, input and output channels per group
  int64_t K, P;        // im2col sizes: K = Cg*KH*KW rows, P = OH*OW columns
  int64_t sh, sw, ph, pw, dh, dw;

  // One input channel per group, as in MobileNet: direct loops beat a GEMM there.
  bool depthwise() const { return Cg == 1 && G > 1; }
  // Output columns [ow_lo, ow_hi) whose kernel tap kw lands inside the input row.
  int64_t ow_lo(int64_t kw) const { return clamp(div_ceil(pw - kw * dw, sw), 0, OW); }
  int64_t ow_hi(int64_t kw) const { return clamp(div_ceil(W + pw - kw * dw, sw), ow_lo(kw), OW); }

 private:
  // Smallest integer >= a / b for b > 0 and any sign of a.
  static int64_t div_ceil(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
  static int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
  }
};

// precision (kernels/precision.h), a trailing argument as on kernels::gemm rather than a field
// of Conv2dParams: the params are the geometry (shapes, descriptors, output_shape), the
// precision is how the products are computed, and the bias gradient has none. fp32 multiplies
// the tensors as they are; bf16 (f32 tensors only, else ValueError) rounds the two operands of
// the product (x and w forward; dy and w for the data gradient; x and dy for the weight
// gradient) to bfloat16, multiplies exactly and sums in f32. Outputs stay f32; the bias is
// added in f32. On the CPU, bf16 is exactly the fp32 op on the rounded operands, bit for bit.
//
// y = conv(x, w) + bias; bias may be undefined.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const Conv2dParams& p, ComputePrecision precision = ComputePrecision::fp32);
// dx = d(y)/d(x)^T dy.
void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p,
                          ComputePrecision precision = ComputePrecision::fp32);
// dw = sum over the batch of dy (x) x; summed in a fixed order for a fixed thread count.
void conv2d_backward_weight(const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Conv2dParams& p,
                            ComputePrecision precision = ComputePrecision::fp32);
// db[o] = sum of dy[:, o, :, :].
void conv2d_backward_bias(const Tensor& dy, const Tensor& db);

namespace cpu {
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const Conv2dParams& p, ComputePrecision precision = ComputePrecision::fp32);
void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p,
                          ComputePrecision precision = ComputePrecision::fp32);
void conv2d_backward_weight(const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Conv2dParams& p,
                            ComputePrecision precision = ComputePrecision::fp32);
void conv2d_backward_bias(const Tensor& dy, const Tensor& db);

// Internal to the CPU backend (kernels/cpu/conv2d_depthwise.cpp): direct loops for
// depthwise() geometries, called by the functions above after their checks.
namespace detail {
void depthwise_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                       const Tensor& bias, const Tensor& y);
void depthwise_backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                             const Tensor& dx);
void depthwise_backward_weight(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                               const Tensor& dw);
// ComputePrecision::bf16 (kernels/cpu/conv2d_bf16.cpp): the fp32 functions above on copies of
// the two product operands rounded to bfloat16; bias and outputs stay f32.
void conv2d_forward_bf16(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                         const Conv2dParams& p);
void conv2d_backward_data_bf16(const Tensor& dy, const Tensor& w, const Tensor& dx,
                               const Conv2dParams& p);
void conv2d_backward_weight_bf16(const Tensor& x, const Tensor& dy, const Tensor& dw,
                                 const Conv2dParams& p);
}  // namespace detail
}  // namespace cpu

// CUDA versions (kernels/cuda/conv2d.cu): cuDNN with algorithms from its heuristics, restricted
// to deterministic ones within a 256 MiB workspace and, for f32, to FMA (non-TF32) kernels
// unless allow_tf32() (kernels/gemm.h); conv2d_backward_bias is a fixed-order double sum per
// channel. Same bits on every run of one build and GPU; the CPU's sums run in another order, so
// the two agree to rounding (tests/test_cuda_ops_conv.cpp: 3e-5 of max|y| in f32, 1e-12 in
// f64). bf16: x and w (dy and w, x and dy) are rounded to bf16 into f32 scratch copies and the
// f32 convolution runs on them with tensor-core (TF32) math allowed: every bf16 value is
// exact in TF32, so the products are the CPU's and only the summation order differs (GEMM-type
// algorithms only: FFT and Winograd would multiply TF32-cut transforms of the operands). cuDNN's
// bf16 data types would need y in bf16 too (its legacy API has no bf16-in, f32-out
// configuration), which would round outputs and gradients.
namespace cuda {
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const Conv2dParams& p, ComputePrecision precision = ComputePrecision::fp32);
void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p,
                          ComputePrecision precision = ComputePrecision::fp32);
void conv2d_backward_weight(const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Conv2dParams& p,
                            ComputePrecision precision = ComputePrecision::fp32);
void conv2d_backward_bias(const Tensor& dy, const Tensor& db);
}  // namespace cuda

}  // namespace tranq::kernels
