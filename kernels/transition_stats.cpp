#include "kernels/transition_stats.h"

#include "kernels/dispatch.h"
#include "kernels/quantize.h"

namespace tranq::kernels {

void check_transition_args(const char* op, const Tensor& w, const Tensor& scale,
                           const QuantRange& r, const Tensor& codes, const Tensor& prev_codes,
                           double near_fraction) {
  check_quantize_args(op, w, scale, r);
  check_codes_buffer(op, "codes", codes, w.numel(), r, false);
  check_codes_buffer(op, "prev_codes", prev_codes, w.numel(), r, false);
  TRANQ_CHECK(codes.device() == w.device() && prev_codes.device() == w.device(),
              "{}: codes {} and prev_codes {} must be on the weight's device ({})", op,
              tensor_str(codes), tensor_str(prev_codes), tensor_str(w));
  TRANQ_CHECK(!codes.storage() || codes.storage() != prev_codes.storage() ||
                  codes.offset() + codes.numel() <= prev_codes.offset() ||
                  prev_codes.offset() + prev_codes.numel() <= codes.offset(),
              "{}: codes and prev_codes must not overlap", op);
  TRANQ_CHECK(near_fraction >= 0.0 && near_fraction <= 0.5,
              "{}: near_fraction is a share of one quantizer step and must lie in [0, 0.5], "
              "got {}",
              op, near_fraction);
}

TransitionCounts weight_transition_init(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction) {
  check_defined(w, "weight_transition_init", "w");
  check_same_device("weight_transition_init", w, {&scale, &codes, &prev_codes});
  TRANQ_DISPATCH_CUDA(weight_transition_init, w, w, scale, r, codes, prev_codes, near_fraction);
}

TransitionCounts weight_transition_pass(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction) {
  check_defined(w, "weight_transition_pass", "w");
  check_same_device("weight_transition_pass", w, {&scale, &codes, &prev_codes});
  TRANQ_DISPATCH_CUDA(weight_transition_pass, w, w, scale, r, codes, prev_codes, near_fraction);
}

}  // namespace tranq::kernels
