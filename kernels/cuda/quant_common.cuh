#pragma once
// What the quantizer kernels share (kernels/cuda/quantize.cu, transition_stats.cu, qat_fused.cu).
#include <cstdint>

#include "kernels/transition_stats.h"

namespace tranq::kernels::cuda {

// Elements per block of the quantizer kernels: block j handles piece j of
// quant_piece(j, inner, kCudaChunk, ...), so it sees a single scale and computes its multiplier
// once. Smaller than the CPU's kQuantChunk so that a 1M-element tensor still fills the GPU.
constexpr int64_t kCudaChunk = 4096;

// The weight transition pass (init = false) or first count (init = true) of
// kernels/transition_stats.h as one kernel on w's GPU; with y defined (pass only) it also writes
// y = value(w) (quantize_weight_and_count). Runs every argument check (the shared ones and
// devices) and synchronises to return the counts. Defined in transition_stats.cu.
TransitionCounts transition_launch(const char* op, const Tensor& w, const Tensor& scale,
                                   const QuantRange& r, const Tensor& y, const Tensor& codes,
                                   const Tensor& prev_codes, double near_fraction, bool init);

// The pass of transition_launch (init = false) into row `row` of a device counts table, never
// waiting (kernels::weight_transition_pass_into's contract); with y defined it also writes
// y = value(w), or NaN when a scale is bad (kernels::quantize_weight_and_count_into).
void transition_launch_into(const char* op, const Tensor& w, const Tensor& scale,
                            const QuantRange& r, const Tensor& y, const Tensor& codes,
                            const Tensor& prev_codes, double near_fraction, const Tensor& counts,
                            int64_t row);

}  // namespace tranq::kernels::cuda
