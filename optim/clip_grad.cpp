#include "optim/clip_grad.h"

#include <cmath>

#include "kernels/elementwise.h"

namespace tranq::optim {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  TRANQ_CHECK(max_norm > 0 && std::isfinite(max_norm),
              "clip_grad_norm: max_norm must be positive and finite, got {}", max_norm);
  // The sums of squares add up on the gradients' device, in parameter order; the host reads
  // the total once.
  Tensor total;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor c = g.contiguous();
    Tensor sq = Tensor::empty(c.shape(), c.dtype(), c.device());
    kernels::mul(c, c, sq);
    Tensor s = Tensor::empty({}, c.dtype(), c.device());
    kernels::sum_all(sq, s);
    if (!total.defined()) {
      total = s;
    } else {
      TRANQ_CHECK(s.device() == total.device() && s.dtype() == total.dtype(),
                  "clip_grad_norm: gradients on one device with one dtype expected, got {} and {}",
                  tensor_str(total), tensor_str(s));
      kernels::add(total, s, total);
    }
  }
  if (!total.defined()) return 0.0;
  const double norm = std::sqrt(total.item());
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
