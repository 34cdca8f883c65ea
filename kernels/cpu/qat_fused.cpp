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
  check_defined(y, op, "y");
  check_same_shape(w, y, op);
  TRANQ_CHECK(y.dtype() == w.dtype() && y.is_contiguous() && y.device() == w.device(),
              "{}: y must be a contiguous {} on {}, got {}", op, dtype_name(w.dtype()),
              w.device().str(), tensor_str(y));
  const TransitionCounts counts =
      cpu::weight_transition_pass(w, scale, r, codes, prev_codes, near_fraction);
  cpu::fake_quantize_forward(w, scale, r, y, Tensor());
  return counts;
}

}  // namespace tranq::kernels::cpu
