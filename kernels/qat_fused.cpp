#include "kernels/qat_fused.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {

TransitionCounts quantize_weight_and_count(const Tensor& w, const Tensor& scale,
                                           const QuantRange& r, const Tensor& y,
                                           const Tensor& codes, const Tensor& prev_codes,
                                           double near_fraction) {
  check_defined(w, "quantize_weight_and_count", "w");
  check_same_device("quantize_weight_and_count", w, {&scale, &y, &codes, &prev_codes});
  TRANQ_DISPATCH_CUDA(quantize_weight_and_count, w, w, scale, r, y, codes, prev_codes,
                      near_fraction);
}

void quantize_weight_and_count_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                    const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                                    double near_fraction, const Tensor& counts, int64_t row) {
  check_defined(w, "quantize_weight_and_count_into", "w");
  check_same_device("quantize_weight_and_count_into", w,
                    {&scale, &y, &codes, &prev_codes, &counts});
  TRANQ_DISPATCH_CUDA(quantize_weight_and_count_into, w, w, scale, r, y, codes, prev_codes,
                      near_fraction, counts, row);
}

void check_fused_values(const char* op, const Tensor& w, const Tensor& y) {
  check_defined(y, op, "y");
  check_same_shape(w, y, op);
  TRANQ_CHECK(y.dtype() == w.dtype() && y.is_contiguous() && y.device() == w.device(),
              "{}: y must be a contiguous {} on {}, got {}", op, dtype_name(w.dtype()),
              w.device().str(), tensor_str(y));
  admit_output(op, y, {&w});
}

}  // namespace tranq::kernels
