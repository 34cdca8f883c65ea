#include "kernels/trs_update.h"

#include <utility>

#include "kernels/dispatch.h"
#include "kernels/transition_stats.h"

namespace tranq::kernels {

void check_trs_update_args(const char* op, const Tensor& counts, const Tensor& K, const Tensor& s,
                           const Tensor& U, const Tensor& k, const Tensor& bad_step) {
  check_defined(counts, op, "counts");
  TRANQ_CHECK(counts.dtype() == DType::i64 && counts.dim() == 2 &&
                  counts.size(1) == kCountColumns && counts.is_contiguous(),
              "{}: counts must be a contiguous i64 [layers, 4] table, got {}", op,
              tensor_str(counts));
  const int64_t layers = counts.size(0);
  const std::pair<const char*, const Tensor*> state[] = {
      {"K", &K}, {"s", &s}, {"U", &U}, {"k", &k}, {"bad_step", &bad_step}};
  for (const auto& [name, t] : state) {
    check_defined(*t, op, name);
    const DType want = t == &bad_step ? DType::i64 : DType::f64;
    TRANQ_CHECK(t->dtype() == want && t->dim() == 1 && t->numel() == layers && t->is_contiguous(),
                "{}: {} must be a contiguous {}[{}] (one per row of counts), got {}", op, name,
                dtype_name(want), layers, tensor_str(*t));
  }
}

void trs_update(const Tensor& counts, const TrsStep& p, const Tensor& K, const Tensor& s,
                const Tensor& U, const Tensor& k, const Tensor& bad_step) {
  check_defined(counts, "trs_update", "counts");
  check_same_device("trs_update", counts, {&K, &s, &U, &k, &bad_step});
  TRANQ_DISPATCH_CUDA(trs_update, counts, counts, p, K, s, U, k, bad_step);
}

}  // namespace tranq::kernels
