#pragma once
// Inverted dropout as two pieces: a keep-mask drawn from an Rng (so the mask depends only on
// the Rng state, whatever the device or thread count) and a kernel that applies it.
#include "core/rng.h"
#include "core/tensor.h"

namespace tranq::kernels {

// Fills mask (a contiguous u8 tensor, CPU or CUDA) with 1 = keep (probability 1-p), 0 = drop.
// Element i uses the Rng draw at counter (start + i); rng (host state) advances by
// mask.numel(). The Rng is counter based, so a CUDA mask is drawn on the device and equals the
// CPU's for the same state, byte for byte.
void fill_dropout_mask(const Tensor& mask, double p, Rng& rng);

// out = mask ? x * scale : 0, with mask u8 of x's shape on x's device. The backward is the
// same call on the incoming gradient. out may be x itself, but not overlap it in part.
void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out);

namespace cpu {
// Defined beside the facade (kernels/dropout.cpp): the draw is the specification.
void fill_dropout_mask(const Tensor& mask, double p, Rng& rng);
void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out);
}  // namespace cpu

// CUDA versions (kernels/cuda/dropout.cu): the CPU's masks and outputs bit for bit.
namespace cuda {
void fill_dropout_mask(const Tensor& mask, double p, Rng& rng);
void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out);
}  // namespace cuda

}  // namespace tranq::kernels
