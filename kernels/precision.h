#pragma once
// The arithmetic precision of the matrix products inside a convolution or linear/matmul (and
// their backward products), passed explicitly to the kernels; there is no global mode.
//   fp32: the operands as they are (f32 or f64 tensors).
//   bf16: autocast, as torch.autocast(dtype=torch.bfloat16) does for conv and matmul: both
//         operands are rounded to bfloat16 (round to nearest even, NaN stays NaN), multiplied
//         exactly (a bf16*bf16 product fits an f32) and summed in f32. Inputs, outputs,
//         gradients, weights and optimizer state stay f32 tensors (fp32 master weights); only
//         f32 tensors may use it. Bias adds and bias gradients stay fp32.
#include <string>

#include "core/error.h"

namespace tranq {

enum class ComputePrecision { fp32, bf16 };

inline const char* compute_precision_name(ComputePrecision p) {
  return p == ComputePrecision::bf16 ? "bf16" : "fp32";
}

// "fp32" | "bf16"; anything else is a ValueError listing the valid names.
inline ComputePrecision parse_compute_precision(const std::string& s) {
  if (s == "fp32") return ComputePrecision::fp32;
  if (s == "bf16") return ComputePrecision::bf16;
  TRANQ_THROW(ValueError, "unknown compute precision '{}'; expected one of: fp32, bf16", s);
}

}  // namespace tranq
