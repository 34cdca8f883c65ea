#pragma once
// General matrix multiply on 2-D contiguous row-major tensors of one floating dtype:
//   c = alpha * op(a) @ op(b) + beta * c,   op(t) = t or t^T.
// c is caller-allocated with the product's shape. With beta == 0, c's old contents are ignored
// (NaNs in c do not propagate), as in BLAS. c must not alias a or b.
#include "core/tensor.h"

namespace tranq::kernels {

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c);

namespace cpu {
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c);

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
// Column multiple that gemm_packed_a handles without its tail path (for splitting n).
template <class T>
int64_t gemm_tile_cols();
// c[i*ldc + j] = bias[i] (0 without bias) + sum_kk A[i][kk] * b[off[kk] + j], i < m, j < n.
// Reads b[off[kk] + j] only for j < n.
template <class T>
void gemm_packed_a(const T* packed, int64_t m, int64_t k, const T* b, const int64_t* off,
                   int64_t n, const T* bias, T* c, int64_t ldc);

// Weight-gradient accumulation, C [K, ldg] += A G summed over positions:
//   c[kk*ldg + o] += sum_{r < rows, j < row_len} a[off[kk] + r*row_stride + j*col_stride]
//                                               * g[(r*row_len + j)*ldg + o]
// for kk in [k_begin, k_end) and o < ldg. ldg must come from wgrad_ld (g zero-padded to it);
// c needs wgrad_rows(k_end) rows (the padding rows receive garbage). When taps == 3, rows come
// in consecutive triples whose offsets differ by tap_stride (a 3-wide kernel's taps), which the
// kernel exploits. k_begin must be a multiple of wgrad_tile_rows.
template <class T>
int64_t wgrad_ld(int64_t o);
template <class T>
int64_t wgrad_tile_rows(int taps, int64_t ldg);
template <class T>
int64_t wgrad_rows(int64_t k, int taps, int64_t ldg);
template <class T>
void wgrad_accumulate(const T* a, const int64_t* off, int64_t k_begin, int64_t k_end, int taps,
                      int64_t tap_stride, int64_t rows, int64_t row_stride, int64_t col_stride,
                      int64_t row_len, const T* g, int64_t ldg, T* c);

}  // namespace detail
}  // namespace cpu

}  // namespace tranq::kernels
