#pragma once
// Top-1 correct counts of a batch of logits, written into a slot of a device buffer so that a
// training loop can count every step without bringing anything to the host (apps/step_stats.h
// reads the buffer at its flush points).
#include <cstdint>

#include "core/tensor.h"

namespace tranq::kernels {

// out[index] = number of rows i of logits whose prediction equals labels[i]. The prediction
// is the first index of the row maximum under strict `>` scanning k = 1..C-1 from k = 0: ties
// pick the lowest index and a NaN never wins (a row starting with NaN predicts 0).
// Arguments: logits contiguous f32/f64 [N,C] with C > 0 (N may be 0: writes 0), labels
// contiguous i32/i64 [N], out contiguous i64 1-D, all on one device, 0 <= index < out.numel().
// Labels outside [0, C) simply never match. On CUDA nothing synchronises; integer counts, so
// the result is exact and deterministic.
void count_correct_into(const Tensor& logits, const Tensor& labels, const Tensor& out,
                        int64_t index);

// The argument checks above (ValueError saying what was expected), run by every backend.
void check_count_correct_args(const Tensor& logits, const Tensor& labels, const Tensor& out,
                              int64_t index);

namespace cpu {
void count_correct_into(const Tensor& logits, const Tensor& labels, const Tensor& out,
                        int64_t index);
}  // namespace cpu

// CUDA version (kernels/cuda/accuracy.cu): one thread per row, counts summed with integer
// atomics (exact whatever the order).
namespace cuda {
void count_correct_into(const Tensor& logits, const Tensor& labels, const Tensor& out,
                        int64_t index);
}  // namespace cuda

}  // namespace tranq::kernels
