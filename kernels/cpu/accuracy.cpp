// Reference CPU correct count: the loop of the CLI's original count_correct, row by row.
#include "kernels/accuracy.h"

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {

void count_correct_into(const Tensor& logits, const Tensor& labels, const Tensor& out,
                        int64_t index) {
  check_count_correct_args(logits, labels, out, index);
  const int64_t n = logits.size(0), c = logits.size(1);
  int64_t correct = 0;
  dispatch_floating(logits.dtype(), "count_correct_into", [&](auto tag) {
    using T = decltype(tag);
    const T* pl = logits.data<T>();
    auto count = [&](const auto* py) {
      for (int64_t i = 0; i < n; ++i) {
        const T* row = pl + i * c;
        int64_t best = 0;
        for (int64_t k = 1; k < c; ++k)
          if (row[k] > row[best]) best = k;
        correct += best == static_cast<int64_t>(py[i]);
      }
    };
    if (labels.dtype() == DType::i32) {
      count(labels.data<int32_t>());
    } else {
      count(labels.data<int64_t>());
    }
  });
  out.data<int64_t>()[index] = correct;
}

}  // namespace tranq::kernels::cpu
