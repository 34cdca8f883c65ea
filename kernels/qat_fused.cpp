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

}  // namespace tranq::kernels
