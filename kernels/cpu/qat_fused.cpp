// Reference for the fused QAT pass: the transition pass, then the forward quantisation. In this
// order y may alias w (the pass reads w before the forward overwrites it), and every check
// (y's included) runs before anything is written.
#include "kernels/qat_fused.h"

#include "kernels/quantize.h"
#include "kernels/transition_stats.h"

namespace tranq::kernels::cpu {

TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction) {
  const char* op = "quantize_weight_and_count";
  check_transition_args(op, w, scale, r, codes, prev_codes, near_fraction);
  check_fused_values(op, w, y);
  const TransitionCounts counts =
      cpu::weight_transition_pass(w, scale, r, codes, prev_codes, near_fraction);
  cpu::fake_quantize_forward(w, scale, r, y, Tensor());
  return counts;
}

void quantize_weight_and_count_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                    const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                                    double near_fraction, const Tensor& counts, int64_t row) {
  const char* op = "quantize_weight_and_count_into";
  check_transition_args(op, w, scale, r, codes, prev_codes, near_fraction);
  check_fused_values(op, w, y);
  check_counts_table(op, w, counts, row);
  cpu::weight_transition_pass_into(w, scale, r, codes, prev_codes, near_fraction, counts, row);
  cpu::fake_quantize_forward(w, scale, r, y, Tensor());
}

}  // namespace tranq::kernels::cpu
