#pragma once
// Fake quantisation (the modified LSQ quantizer of docs/trs-method.md), its straight-through
// backward and the dequantisation of stored int8 codes. The scalar math lives in
// kernels/quant_math.h; these are the loops over tensors.
//
// Common arguments:
//  - x, y, dy, dx: contiguous f32 or f64 tensors of one shape and dtype (y may be x itself, dx
//    may be dy itself; an output that overlaps an input only in part is a ValueError).
//  - scale: contiguous, x's dtype, shape [1] (per tensor) or [x.size(0)] (per channel along
//    dim 0, e.g. the output channels of an OIHW weight). Its sign is ignored (|s| is used);
//    a zero, non-finite or too small scale (quant_scale_usable) is a ValueError.
//  - codes: contiguous i8 with x.numel() elements, or undefined where optional. Unsigned
//    (activation) codes may use u8 instead; 8-bit activation codes (0..255) need u8.
//
// Reductions (dscale) are deterministic and independent of the thread count: every scale's
// elements are cut into the fixed pieces of quant_piece() (kQuantChunk elements), each piece
// summed in double over 8 interleaved lanes (element k of the piece into lane k % 8, lanes
// added in order), the piece sums added in order.
#include <cstdint>

#include "core/tensor.h"
#include "kernels/quant_math.h"

namespace tranq::kernels {

constexpr int64_t kQuantChunk = 1 << 14;

// y = value(x); codes (may be undefined) = code(x).
void fake_quantize_forward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                           const Tensor& y, const Tensor& codes);

// STE backward. dx = inside ? dy / |s| : 0 (dx may be undefined to skip).
// dscale (scale's shape, OVERWRITTEN; undefined to skip), per scale c over its elements i:
//   dscale_c = (sum_{i inside} dy_i * x_i) * grad_scale_factor * (-sign(s_c) / |s_c|^2),
// all in double, cast to T at the end. grad_scale_factor: 1.0 plain, lsq_grad_scale_factor()
// for LSQ's gradient scaling.
void fake_quantize_backward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                            const Tensor& dy, const Tensor& dx, const Tensor& dscale,
                            double grad_scale_factor);

// y = code / g for stored codes (i8, or u8 for unsigned codes; the exported integer model).
// y: contiguous f32/f64 with codes.numel() elements. A code outside [lo, hi] (binary weights: not
// +-1) is a ValueError.
void dequantize_codes(const Tensor& codes, const QuantRange& r, const Tensor& y);

// LSQ's gradient scale 1/sqrt(N*Qp): N elements share a scale, Qp = r.hi (1 for binary).
double lsq_grad_scale_factor(int64_t elements_per_scale, const QuantRange& r);

// Argument checks shared by every backend (shapes, dtypes, contiguity, range sanity).
// Returns the number of elements per scale.
int64_t check_quantize_args(const char* op, const Tensor& x, const Tensor& scale,
                            const QuantRange& r);
void check_quant_range(const char* op, const QuantRange& r);
// fake_quantize_backward's checks: those above, plus dy (and dx) like x, dscale like scale.
void check_quantize_backward_args(const char* op, const Tensor& x, const Tensor& scale,
                                  const QuantRange& r, const Tensor& dy, const Tensor& dx,
                                  const Tensor& dscale, double grad_scale_factor);
bool range_fits_i8(const QuantRange& r);
// codes: defined, contiguous, numel elements, i8 (range fits) or, when allow_u8, u8 (lo >= 0).
void check_codes_buffer(const char* op, const char* arg, const Tensor& codes, int64_t numel,
                        const QuantRange& r, bool allow_u8);

namespace cpu {
void fake_quantize_forward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                           const Tensor& y, const Tensor& codes);
void fake_quantize_backward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                            const Tensor& dy, const Tensor& dx, const Tensor& dscale,
                            double grad_scale_factor);
void dequantize_codes(const Tensor& codes, const QuantRange& r, const Tensor& y);
}  // namespace cpu

// CUDA versions (kernels/cuda/quantize.cu; defined only in builds with the CUDA backend).
// y and codes equal the CPU's bit for bit, and so does dx; dscale sums the same products in
// double in another fixed order (per-thread sums, then a block tree, then the channel's block
// sums in a fixed split and tree), so it is the same bits on every run and matches the CPU up to
// summation rounding: |diff| <= n * 2^-52 * factor * sum_i |dy_i * x_i| / s^2 (n elements per
// scale) plus one ulp of T for the final cast. The scale's values live on the GPU and are not
// checked here (that would cost a host synchronisation): a zero, non-finite or too small scale
// (quant_scale_usable) gives what the formulas give for an infinite or NaN multiplier instead of a
// ValueError. dequantize_codes synchronises to report bad codes like the CPU.
namespace cuda {
void fake_quantize_forward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                           const Tensor& y, const Tensor& codes);
void fake_quantize_backward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                            const Tensor& dy, const Tensor& dx, const Tensor& dscale,
                            double grad_scale_factor);
void dequantize_codes(const Tensor& codes, const QuantRange& r, const Tensor& y);
}  // namespace cuda

}  // namespace tranq::kernels
