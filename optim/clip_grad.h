#pragma once
// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_ (norm_type 2): the norm
// of all the gradients taken as one vector; where it exceeds max_norm every gradient is
// multiplied by max_norm / (norm + 1e-6). Works on any device through the kernel facades, with
// gradients of several devices and dtypes: squares are summed in double per device
// (kernels::sum_squares) and combined on the host; reading the norm is one host wait per device
// used. torch sums per-tensor norms in the gradients' dtype, so f32 norms agree to f32 rounding.
#include <vector>

#include "core/tensor.h"

namespace tranq::optim {

// Returns the total norm before clipping (parameters without a gradient are left out; 0 when
// none has one). Gradients are replaced by scaled copies, never written in place, since a
// gradient tensor may be shared. max_norm must be positive (ValueError).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// Replaces every defined gradient of params with f times it: a new tensor, never written in
// place, as above. f must be finite (ValueError).
void scale_grads(const std::vector<Tensor>& params, double f);

}  // namespace tranq::optim
