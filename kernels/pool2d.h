#pragma once
// 2-D pooling over x [N,C,H,W] (contiguous). Output size per dimension, floor mode:
// (in + 2*pad - kernel) / stride + 1. Outputs are allocated by the caller.
#include "core/tensor.h"

namespace tranq::kernels {

struct Pool2dGeometry {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
};

// Checks the geometry against x [N,C,H,W] and returns the output shape [N,C,OH,OW]; throws
// ValueError (naming `op`) for a bad kernel, stride or padding or a window larger than x.
Shape pool2d_output_shape(const Tensor& x, const Pool2dGeometry& g, const char* op);

// y [N,C,OH,OW] = window maxima; indices (i32, same shape as y) receive the argmax as a flat
// index h*W + w into the input plane (PyTorch's convention). NaN wins, as in PyTorch.
void max_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y,
                        const Tensor& indices);
// dx [N,C,H,W] = dy routed to the recorded argmax positions (overwrites dx). g and indices are
// the forward's: dy's shape is pool2d_output_shape(dx, g), and each index lies in its output's
// window (the CUDA version finds an input's contributions by the windows that cover it).
void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dGeometry& g,
                         const Tensor& dx);

// Window means; padding counts towards the divisor (count_include_pad=True).
void avg_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y);
void avg_pool2d_backward(const Tensor& dy, const Pool2dGeometry& g, const Tensor& dx);

// y [N,C,1,1] = mean over H and W; the backward spreads dy/(H*W) over the plane.
void global_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx);

namespace cpu {
void max_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y,
                        const Tensor& indices);
void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dGeometry& g,
                         const Tensor& dx);
void avg_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y);
void avg_pool2d_backward(const Tensor& dy, const Pool2dGeometry& g, const Tensor& dx);
void global_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx);
}  // namespace cpu

// CUDA versions (kernels/cuda/pool2d.cu): the CPU's results bit for bit (each value summed or
// compared in the CPU's order). max_pool2d_backward gathers: one thread per input element adds
// dy of the outputs whose window covers it and whose argmax it is, in output order, as the
// CPU's scatter does.
namespace cuda {
void max_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y,
                        const Tensor& indices);
void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dGeometry& g,
                         const Tensor& dx);
void avg_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y);
void avg_pool2d_backward(const Tensor& dy, const Pool2dGeometry& g, const Tensor& dx);
void global_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx);
}  // namespace cuda

}  // namespace tranq::kernels
