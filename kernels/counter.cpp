#include "kernels/counter.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {

void add_to_counter(const Tensor& t, int64_t by) {
  check_defined(t, "add_to_counter", "t");
  TRANQ_CHECK(t.dtype() == DType::i64 && t.is_contiguous(),
              "add_to_counter: expected a contiguous i64 tensor, got {}", tensor_str(t));
  TRANQ_DISPATCH_CUDA(add_to_counter, t, t, by);
}

}  // namespace tranq::kernels
