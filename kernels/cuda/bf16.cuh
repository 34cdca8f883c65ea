#pragma once
// Internal to the CUDA backend: f32 -> bf16 operand conversion for cuBLAS's bf16 GEMMs
// (kernels/cuda/gemm.cu), with kernels/bf16_math.h's rounding (the CPU's bits).
#include <cstdint>

#include "core/tensor.h"

namespace tranq::kernels::cuda {

// dst[i] = the bf16 bits of src[i] rounded to nearest even, i < n, on `device`'s current stream.
void f32_to_bf16_bits(const float* src, uint16_t* dst, int64_t n, int device);

}  // namespace tranq::kernels::cuda
