#pragma once
// Elementwise ops on same-shaped contiguous tensors. Outputs are preallocated by the caller
// and may be an input itself (in-place use is allowed); an output that overlaps an input only in
// part is a ValueError.
#include "core/tensor.h"

namespace tranq::kernels {

void add(const Tensor& a, const Tensor& b, const Tensor& out);  // out = a + b
void axpby(double alpha, const Tensor& a, double beta, const Tensor& b,
           const Tensor& out);                                  // out = alpha*a + beta*b
void mul(const Tensor& a, const Tensor& b, const Tensor& out);  // out = a * b
void scale(const Tensor& a, double s, const Tensor& out);       // out = s * a
// cap <= 0: plain ReLU, else min(max(x,0),cap); NaN stays NaN (as in PyTorch).
void relu_forward(const Tensor& x, const Tensor& y, double cap);
void relu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx,
                   double cap);  // dx = dy where 0 < x (< cap)
// out (shape []) = sum of all elements; summed in a fixed order for a fixed thread count.
void sum_all(const Tensor& x, const Tensor& out);
// out (one f64 element) = sum of x_i^2, each square and the sum in double, in sum_all's fixed
// order: the squared 2-norm without a squared copy of x (gradient clipping).
void sum_squares(const Tensor& x, const Tensor& out);

namespace cpu {
void add(const Tensor& a, const Tensor& b, const Tensor& out);
void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, const Tensor& out);
void mul(const Tensor& a, const Tensor& b, const Tensor& out);
void scale(const Tensor& a, double s, const Tensor& out);
void relu_forward(const Tensor& x, const Tensor& y, double cap);
void relu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, double cap);
void sum_all(const Tensor& x, const Tensor& out);
void sum_squares(const Tensor& x, const Tensor& out);
}  // namespace cpu

// CUDA versions (kernels/cuda/elementwise.cu). add, mul, scale and the ReLUs equal the CPU bit
// for bit; axpby rounds each operation on its own (the CPU build may fuse one multiply-add, so
// the two agree within an ulp of T); sum_all sums 4096-element blocks in double with a fixed
// tree, then the block sums in one fixed-order pass: the same bits on every run, and within
// n * 2^-52 * sum|x| (plus the final rounding to T) of the CPU's sum; sum_squares likewise.
namespace cuda {
void add(const Tensor& a, const Tensor& b, const Tensor& out);
void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, const Tensor& out);
void mul(const Tensor& a, const Tensor& b, const Tensor& out);
void scale(const Tensor& a, double s, const Tensor& out);
void relu_forward(const Tensor& x, const Tensor& y, double cap);
void relu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, double cap);
void sum_all(const Tensor& x, const Tensor& out);
void sum_squares(const Tensor& x, const Tensor& out);

// dst += src for contiguous same-shaped CUDA tensors (f32/f64): the gradient accumulator of
// the CUDA backend (kernels/cuda/grad_accumulate.cu), bit for bit the CPU's.
void accumulate(const Tensor& dst, const Tensor& src);
// Registers the CUDA ops that core calls through hooks (the gradient accumulator above).
// Idempotent; the CUDA backend's init() calls it.
void register_cuda_ops();
}  // namespace cuda

}  // namespace tranq::kernels
