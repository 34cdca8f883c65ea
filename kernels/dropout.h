#pragma once
// Inverted dropout as two pieces: a keep-mask drawn on the host from an Rng (so the mask
// depends only on the Rng state, whatever the device or thread count) and a device kernel
// that applies it.
#include "core/rng.h"
#include "core/tensor.h"

namespace tranq::kernels {

// Fills mask (a contiguous u8 CPU tensor) with 1 = keep (probability 1-p), 0 = drop.
// Element i uses the Rng draw at counter (start + i); rng advances by mask.numel(). Host-only,
// not dispatched: other devices copy the mask over.
void fill_dropout_mask(const Tensor& mask, double p, Rng& rng);

// out = mask ? x * scale : 0, with mask u8 of x's shape on x's device. The backward is the
// same call on the incoming gradient. out may alias x.
void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out);

namespace cpu {
void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out);
}  // namespace cpu

}  // namespace tranq::kernels
