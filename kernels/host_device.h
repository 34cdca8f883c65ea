#pragma once
// TRANQ_HD marks the header-only scalar math that the CPU kernels and the CUDA kernels share
// (kernels/quant_math.h, trs_math.h, bf16_math.h): __host__ __device__ under nvcc, nothing
// otherwise, so those headers compile without CUDA.
#ifndef TRANQ_HD
#if defined(__CUDACC__)
#define TRANQ_HD __host__ __device__
#else
#define TRANQ_HD
#endif
#endif
