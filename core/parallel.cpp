#include "core/parallel.h"

#include <omp.h>

#include "core/error.h"

namespace tranq {
void set_num_threads(int n) {
  TRANQ_CHECK(n >= 1, "thread count must be at least 1, got {}", n);
  omp_set_num_threads(n);
}
int num_threads() { return omp_get_max_threads(); }
}  // namespace tranq
