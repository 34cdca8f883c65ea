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

void check_counts_table(const char* op, const Tensor& w, const Tensor& counts, int64_t row) {
  check_defined(counts, op, "counts");
  TRANQ_CHECK(counts.dtype() == DType::i64 && counts.dim() == 2 &&
                  counts.size(1) == kCountColumns && counts.is_contiguous(),
              "{}: counts must be a contiguous i64 [layers, 4] table, got {}", op,
              tensor_str(counts));
  TRANQ_CHECK(row >= 0 && row < counts.size(0), "{}: row {} is outside the counts table {}", op,
              row, tensor_str(counts));
  TRANQ_CHECK(counts.device() == w.device(), "{}: counts {} must be on the weight's device ({})",
              op, tensor_str(counts), tensor_str(w));
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

void weight_transition_init_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row) {
  check_defined(w, "weight_transition_init_into", "w");
  check_same_device("weight_transition_init_into", w, {&scale, &codes, &prev_codes, &counts});
  TRANQ_DISPATCH_CUDA(weight_transition_init_into, w, w, scale, r, codes, prev_codes, near_fraction,
                      counts, row);
}

void weight_transition_pass_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row) {
  check_defined(w, "weight_transition_pass_into", "w");
  check_same_device("weight_transition_pass_into", w, {&scale, &codes, &prev_codes, &counts});
  TRANQ_DISPATCH_CUDA(weight_transition_pass_into, w, w, scale, r, codes, prev_codes, near_fraction,
                      counts, row);
}

}  // namespace tranq::kernels
