#pragma once
// General matrix multiply on 2-D contiguous row-major tensors of one floating dtype:
//   c = alpha * op(a) @ op(b) + beta * c,   op(t) = t or t^T.
// c is caller-allocated with the product's shape. With beta == 0, c's old contents are ignored
// (NaNs in c do not propagate), as in BLAS; with alpha == 0 (or an empty inner dimension) a and b
// are not read: c = beta * c. c must not alias a or b.
//
// precision (kernels/precision.h): fp32 multiplies the operands as they are; bf16 (f32 tensors
// only, else ValueError) rounds a and b to bfloat16 first, multiplies exactly and sums in f32;
// c stays f32 and beta * c is added in f32. On the CPU, bf16 is exactly the fp32 GEMM of the
// rounded operands (kernels/bf16.h), bit for bit.
#include "core/tensor.h"
#include "kernels/precision.h"

namespace tranq::kernels {

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c, ComputePrecision precision = ComputePrecision::fp32);

// Whether f32 GEMMs and convolutions on CUDA may use TF32 tensor cores (products of inputs
// rounded to 10 mantissa bits: faster, about 1e-3 relative error). Off by default, so CUDA
// results track the CPU's; the CPU backend never uses reduced precision. Process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();

namespace cpu {
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c, ComputePrecision precision = ComputePrecision::fp32);

// Internal to the CPU backend: register-blocked GEMM micro-kernels for convolutions
// (kernels/cpu/conv2d.cpp), instantiated for float and double. Their operands are "row views":
// row kk of a K-row operand starts at base + off[kk], which lets a convolution read a padded
// input image in place of an im2col matrix. Every output element is summed in a fixed order.
namespace detail {

// A [m, k] (element (i, kk) at a[i*rs + kk*cs]) repacked into zero-padded panels of rows.
template <class T>
int64_t packed_a_size(int64_t m, int64_t k);
template <class T>
void pack_a(const T* a, int64_t rs, int64_t cs, int64_t m, int64_t k, T* packed);
// Vector width in elements: gemm_packed_a column ranges start on multiples of it.
template <class T>
int64_t gemm_vec_cols();
// Where logical column j of B and C lives: columns come in rows of row_len, so column j is
// at (j / row_len) * b_stride + j % row_len in B and (j / row_len) * c_stride + j % row_len in
// C. row_len must be a multiple of gemm_vec_cols, or half of it, unless all columns are in one
// row.
struct ColumnRows {
  int64_t row_len, b_stride, c_stride;
};
// For logical columns j in [j_begin, j_end) and i < m:
//   c[i*ldc + col_c(j)] = bias[i] (0 without bias) + sum_kk A[i][kk] * b[off[kk] + col_b(j)].
// Reads B only at those columns.
template <class T>
void gemm_packed_a(const T* packed, int64_t m, int64_t k, const T* b, const int64_t* off, T* c,
                   int64_t ldc, const T* bias, int64_t j_begin, int64_t j_end, ColumnRows rows);

// o rounded up to whole vectors: the row length of the weight-gradient operands below.
template <class T>
int64_t padded_ld(int64_t o);

// Weight-gradient accumulation, C [K, ldg] += A G summed over positions:
//   c[kk*ldg + o] += sum_{r < rows, j < row_len} a[off[kk] + r*row_stride + j*col_stride]
//                                               * g[(r*row_len + j)*ldg + o]
// for kk in [k_begin, k_end) and o < ldg. ldg must come from padded_ld (g zero-padded to it);
// c needs wgrad_rows(k_end) rows (the padding rows receive garbage). When taps == 3, rows come
// in consecutive triples whose offsets differ by tap_stride (a 3-wide kernel's taps), which the
// kernel exploits. k_begin must be a multiple of wgrad_tile_rows.
template <class T>
int64_t wgrad_tile_rows(int taps, int64_t ldg);
template <class T>
int64_t wgrad_rows(int64_t k, int taps, int64_t ldg);
template <class T>
void wgrad_accumulate(const T* a, const int64_t* off, int64_t k_begin, int64_t k_end, int taps,
                      int64_t tap_stride, int64_t rows, int64_t row_stride, int64_t col_stride,
                      int64_t row_len, const T* g, int64_t ldg, T* c);

// dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols (vector shuffles on whole blocks).
template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t lds, T* dst, int64_t ldd);

// dst[2j] = even[j], dst[2j + 1] = odd[j] for j < n.
template <class T>
void interleave2(const T* even, const T* odd, int64_t n, T* dst);

}  // namespace detail
}  // namespace cpu

// CUDA version (kernels/cuda/gemm.cu): cuBLAS (Sgemm / Dgemm on the row-major operands read as
// column-major transposes), one handle per device. f32 accumulates in f32 without TF32 unless
// allow_tf32(); cuBLAS picks its own summation order, so results differ from the CPU's by
// rounding (about k * 2^-24 * sum|a||b| in f32) but are the same bits on every run of one
// build and GPU (cuBLAS's GEMMs are deterministic on one stream). bf16: a and b are converted
// to bf16 copies (scratch memory, the CPU's rounding) and multiplied by cublasGemmEx with
// CUBLAS_COMPUTE_32F into the f32 c, on tensor cores: the CPU's products, summed in another
// order (tests/test_cuda_bf16.cpp).
namespace cuda {
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c, ComputePrecision precision = ComputePrecision::fp32);
}  // namespace cuda

}  // namespace tranq::kernels
