#include "kernels/dropout.h"

#include "layers/functional.h"

namespace tranq::ops {

Tensor dropout(const Tensor& x, double p, bool training, Rng& rng) {
  check_defined(x, "dropout", "x");
  TRANQ_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must lie in [0, 1], got {}", p);
  // Identity: no mask is drawn and the rng does not advance.
  if (!training || p == 0.0) return x;
  // Drawn where x lives; the counter-based rng gives the same bytes on every backend.
  Tensor mask = Tensor::empty(x.shape(), DType::u8, x.device());
  kernels::fill_dropout_mask(mask, p, rng);
  // p == 1 drops everything; scale 0 avoids the infinite 1/(1-p).
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty_like(xc);
  kernels::dropout_apply(xc, mask, scale, y);
  return record(y, "dropout", {x}, {}, [mask, scale](const Tensor& g) {
    const Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty_like(gc);
    kernels::dropout_apply(gc, mask, scale, dx);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace tranq::ops
