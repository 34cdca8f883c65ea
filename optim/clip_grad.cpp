#include "optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "kernels/elementwise.h"

namespace tranq::optim {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  TRANQ_CHECK(max_norm > 0 && std::isfinite(max_norm),
              "clip_grad_norm: max_norm must be positive and finite, got {}", max_norm);
  // The sums of squares add up on their gradients' device, one running total per (device,
  // dtype) in parameter order, as torch groups them; the host reads each total once.
  std::vector<Tensor> totals;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor c = g.contiguous();
    Tensor sq = Tensor::empty(c.shape(), c.dtype(), c.device());
    kernels::mul(c, c, sq);
    Tensor s = Tensor::empty({}, c.dtype(), c.device());
    kernels::sum_all(sq, s);
    auto it = std::find_if(totals.begin(), totals.end(), [&](const Tensor& t) {
      return t.device() == s.device() && t.dtype() == s.dtype();
    });
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
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor scaled = Tensor::empty(g.shape(), g.dtype(), g.device());
    kernels::scale(g.contiguous(), coef, scaled);
    p.set_grad(scaled);
  }
  return norm;
}

}  // namespace tranq::optim
