#include "kernels/dropout.h"

#include <algorithm>

#include "kernels/dispatch.h"

namespace tranq::kernels {

void fill_dropout_mask(const Tensor& mask, double p, Rng& rng) {
  check_defined(mask, "fill_dropout_mask", "mask");
  TRANQ_DISPATCH_CUDA(fill_dropout_mask, mask, mask, p, rng);
}

void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out) {
  check_defined(x, "dropout_apply", "x");
  check_same_device("dropout_apply", x, {&mask, &out});
  admit_output("dropout_apply", out, {&x});
  TRANQ_DISPATCH_CUDA(dropout_apply, x, x, mask, scale, out);
}

namespace cpu {

void fill_dropout_mask(const Tensor& mask, double p, Rng& rng) {
  TRANQ_CHECK(mask.device().is_cpu() && mask.dtype() == DType::u8 && mask.is_contiguous(),
              "fill_dropout_mask: mask must be a contiguous u8 CPU tensor, got {}",
              tensor_str(mask));
  TRANQ_CHECK(p >= 0.0 && p <= 1.0, "fill_dropout_mask: p must lie in [0, 1], got {}", p);
  uint8_t* m = mask.data<uint8_t>();
  const int64_t n = mask.numel();
  const uint64_t key = rng.key(), start = rng.counter();
  // The Rng is counter based, so any chunk can be drawn by its own copy positioned at the
  // chunk's counter: the mask is the same as one serial pass, for any thread count.
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    Rng r;
    r.set_state(key, start + static_cast<uint64_t>(c * kChunk));
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) m[i] = r.uniform() >= p ? 1 : 0;
  }
  rng.set_state(key, start + static_cast<uint64_t>(n));
}

}  // namespace cpu
}  // namespace tranq::kernels
