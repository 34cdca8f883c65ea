// Reference CPU softmax cross-entropy. Rows are independent: each row's loss lands in its own
// slot and the slots are summed in index order, so the result is deterministic.
#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 14;

void check_common(const Tensor& mat, const Tensor& labels, double eps, const char* op,
                  const char* arg) {
  TRANQ_CHECK(mat.dim() == 2 && mat.is_contiguous(), "{}: {} must be a contiguous [N,C], got {}",
              op, arg, tensor_str(mat));
  TRANQ_CHECK(labels.dim() == 1 && labels.size(0) == mat.size(0) && labels.is_contiguous() &&
                  (labels.dtype() == DType::i32 || labels.dtype() == DType::i64),
              "{}: labels must be a contiguous i32 or i64 [{}], got {}", op, mat.size(0),
              tensor_str(labels));
  TRANQ_CHECK(eps >= 0.0 && eps <= 1.0, "{}: label_smoothing must lie in [0, 1], got {}", op, eps);
  check_labels(labels, mat.size(1), op);  // the loops below index rows by label
}

// Calls f(p) with p the labels' data as int32_t* or int64_t*.
template <class F>
void with_labels(const Tensor& labels, F&& f) {
  if (labels.dtype() == DType::i32) {
    f(labels.data<int32_t>());
  } else {
    f(labels.data<int64_t>());
  }
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, double label_smoothing,
                           const Tensor& loss, const Tensor& probs) {
  const char* op = "cross_entropy_forward";
  check_common(logits, labels, label_smoothing, op, "logits");
  const int64_t n = logits.size(0), c = logits.size(1);
  TRANQ_CHECK(n > 0 && c > 0, "{}: empty logits {}", op, tensor_str(logits));
  TRANQ_CHECK(loss.numel() == 1 && loss.dtype() == logits.dtype(),
              "{}: loss must be a scalar of the logits' dtype, got {}", op, tensor_str(loss));
  check_same_shape(logits, probs, op);
  TRANQ_CHECK(probs.dtype() == logits.dtype() && probs.is_contiguous(),
              "{}: probs must be a contiguous {}, got {}", op, dtype_name(logits.dtype()),
              tensor_str(probs));
  const double eps = label_smoothing;
  dispatch_floating(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = logits.data<T>();
    T* pp = probs.data<T>();
    std::vector<double> row_loss(static_cast<size_t>(n));
    with_labels(labels, [&](auto* py) {
#pragma omp parallel for schedule(static) if (n * c > kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const T* x = px + i * c;
        T* p = pp + i * c;
        // Shifting by the row maximum keeps every exp() in (0, 1]: no overflow.
        double mx = static_cast<double>(x[0]);
        for (int64_t j = 1; j < c; ++j) mx = std::max(mx, static_cast<double>(x[j]));
        double se = 0, sx = 0;
        for (int64_t j = 0; j < c; ++j) {
          const double e = std::exp(static_cast<double>(x[j]) - mx);
          p[j] = static_cast<T>(e);  // normalised below
          se += e;
          sx += static_cast<double>(x[j]);
        }
        const double lse = mx + std::log(se);
        const double inv = 1.0 / se;
        for (int64_t j = 0; j < c; ++j) p[j] = static_cast<T>(static_cast<double>(p[j]) * inv);
        const double nll = lse - static_cast<double>(x[py[i]]);
        const double smooth = lse - sx / static_cast<double>(c);  // mean_c(-log p_c)
        row_loss[i] = (1.0 - eps) * nll + eps * smooth;
      }
    });
    double total = 0;
    for (double v : row_loss) total += v;
    *loss.data<T>() = static_cast<T>(total / static_cast<double>(n));
  });
}

void cross_entropy_backward(const Tensor& probs, const Tensor& labels, double label_smoothing,
                            const Tensor& dloss, const Tensor& dlogits) {
  const char* op = "cross_entropy_backward";
  check_common(probs, labels, label_smoothing, op, "probs");
  check_same_shape(probs, dlogits, op);
  TRANQ_CHECK(dlogits.dtype() == probs.dtype() && dlogits.is_contiguous() && dloss.numel() == 1 &&
                  dloss.dtype() == probs.dtype(),
              "{}: expected contiguous dlogits and a scalar dloss of dtype {}, got {} and {}", op,
              dtype_name(probs.dtype()), tensor_str(dlogits), tensor_str(dloss));
  const int64_t n = probs.size(0), c = probs.size(1);
  const double eps = label_smoothing;
  dispatch_floating(probs.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pp = probs.data<T>();
    T* pd = dlogits.data<T>();
    const double g = static_cast<double>(*dloss.data<T>()) / static_cast<double>(n);
    const T gs = static_cast<T>(g);
    const T off = static_cast<T>(g * eps / static_cast<double>(c));  // g * smoothed target
    const T on = static_cast<T>(g * (1.0 - eps));                    // extra for the label
    with_labels(labels, [&](auto* py) {
#pragma omp parallel for schedule(static) if (n * c > kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const T* p = pp + i * c;
        T* d = pd + i * c;
        for (int64_t j = 0; j < c; ++j) d[j] = gs * p[j] - off;
        d[py[i]] -= on;
      }
    });
  });
}

}  // namespace tranq::kernels::cpu
