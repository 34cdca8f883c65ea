#include "optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "kernels/elementwise.h"

namespace tranq::optim {

namespace {
// Replaces every defined gradient with f times it (a new tensor).
void scale_each(const std::vector<Tensor>& params, double f) {
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor scaled = Tensor::empty(g.shape(), g.dtype(), g.device());
    kernels::scale(g.contiguous(), f, scaled);
    p.set_grad(scaled);
  }
}
}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  TRANQ_CHECK(max_norm > 0 && std::isfinite(max_norm),
              "clip_grad_norm: max_norm must be positive and finite, got {}", max_norm);
  // The sums of squares add up in double on their gradients' device (one running total per
  // device, in parameter order), without a squared copy of any gradient; the host reads each
  // total once.
  std::vector<Tensor> totals;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor s = Tensor::empty({}, DType::f64, g.device());
    kernels::sum_squares(g.contiguous(), s);
    auto it = std::find_if(totals.begin(), totals.end(),
                           [&](const Tensor& t) { return t.device() == s.device(); });
    if (it == totals.end())
      totals.push_back(s);
    else
      kernels::add(*it, s, *it);
  }
  double sum = 0;
  for (const Tensor& t : totals) sum += t.item();
  const double norm = std::sqrt(sum);
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return norm;  // torch multiplies by the clamped 1.0: the same values
  // As in torch, a NaN norm gives a NaN factor (and an infinite one 0): no error here; NaN
  // gradients make NaN weights, which the caller's divergence check reports.
  scale_each(params, coef);
  return norm;
}

void scale_grads(const std::vector<Tensor>& params, double f) {
  TRANQ_CHECK(std::isfinite(f), "scale_grads: the factor must be finite, got {}", f);
  scale_each(params, f);
}

}  // namespace tranq::optim
