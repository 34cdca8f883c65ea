#include "kernels/counter.h"

namespace tranq::kernels::cpu {

void add_to_counter(const Tensor& t, int64_t by) {
  int64_t* p = t.data<int64_t>();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) p[i] += by;
}

}  // namespace tranq::kernels::cpu
