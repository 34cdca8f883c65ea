// CUDA fused QAT pass: the transition kernel of kernels/cuda/transition_stats.cu in its form
// that also writes y = value(w), so the weights are read once.
#include "kernels/cuda/quant_common.cuh"
#include "kernels/qat_fused.h"

namespace tranq::kernels::cuda {

TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction) {
  const char* op = "quantize_weight_and_count";
  check_defined(y, op, "y");
  return transition_launch(op, w, scale, r, y, codes, prev_codes, near_fraction, false);
}

void quantize_weight_and_count_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                    const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                                    double near_fraction, const Tensor& counts, int64_t row) {
  const char* op = "quantize_weight_and_count_into";
  check_defined(y, op, "y");
  transition_launch_into(op, w, scale, r, y, codes, prev_codes, near_fraction, counts, row);
}

}  // namespace tranq::kernels::cuda
