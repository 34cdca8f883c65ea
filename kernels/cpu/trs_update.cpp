// Reference TALR controller update: the loop of TrsController::update over the counts table,
// through the shared per-layer function of kernels/trs_math.h.
#include "kernels/trs_update.h"

#include "kernels/transition_stats.h"

namespace tranq::kernels::cpu {

void trs_update(const Tensor& counts, const TrsStep& p, const Tensor& K, const Tensor& s,
                const Tensor& U, const Tensor& k, const Tensor& bad_step) {
  check_trs_update_args("trs_update", counts, K, s, U, k, bad_step);
  const int64_t* c = counts.data<int64_t>();
  double* pK = K.data<double>();
  double* ps = s.data<double>();
  double* pU = U.data<double>();
  double* pk = k.data<double>();
  int64_t* bad = bad_step.data<int64_t>();
  for (int64_t i = 0; i < counts.size(0); ++i) {
    const int64_t* row = c + i * kCountColumns;
    if (!trs_layer_update(row[kCountNumel], row[kCountChanged], p, pK + i, ps + i, pU + i,
                          pk + i) &&
        bad[i] == 0)
      bad[i] = p.step + 1;
  }
}

}  // namespace tranq::kernels::cpu
