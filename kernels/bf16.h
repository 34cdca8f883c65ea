#pragma once
// bfloat16 rounding of f32 tensors: the operand conversion of ComputePrecision::bf16
// (kernels/precision.h). The scalar rule is kernels/bf16_math.h (torch's round to nearest even).
#include "core/tensor.h"
#include "kernels/precision.h"

namespace tranq::kernels {

// out[i] = x[i] rounded to the nearest bfloat16, stored as f32. x and out: contiguous f32
// tensors of one shape on one device; out may be x (in place).
void round_to_bf16(const Tensor& x, const Tensor& out);

// A new contiguous f32 tensor holding x rounded to bf16: the operand copy an op makes under
// ComputePrecision::bf16. x must be f32; an f64 (or other) tensor is a ValueError naming `op`
// and `arg`, since bf16 autocast is defined for f32 models only.
Tensor bf16_rounded_copy(const Tensor& x, const char* op, const char* arg);

// ValueError naming `op` unless every defined tensor is f32 (bf16 compute precision is for f32
// tensors only).
void check_bf16_dtypes(const char* op, std::initializer_list<const Tensor*> tensors);

// The argument checks of round_to_bf16 that every backend runs first (defined, f32, one shape,
// contiguous).
void check_round_to_bf16_args(const Tensor& x, const Tensor& out);

namespace cpu {
void round_to_bf16(const Tensor& x, const Tensor& out);
}  // namespace cpu

// CUDA version (kernels/cuda/bf16.cu): the same scalar function, so the same bits.
namespace cuda {
void round_to_bf16(const Tensor& x, const Tensor& out);
}  // namespace cuda

}  // namespace tranq::kernels
