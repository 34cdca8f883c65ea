#pragma once
// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_ (norm_type 2): the norm
// of all the gradients taken as one vector; where it exceeds max_norm every gradient is
// multiplied by max_norm / (norm + 1e-6). Works on any device through the kernel facades, with
// gradients of several devices and dtypes summed per (device, dtype) and combined on the host;
// reading the norm is one host wait per device used.
#include <vector>

#include "core/tensor.h"

namespace tranq::optim {

// Returns the total norm before clipping (parameters without a gradient are left out; 0 when
// none has one). Gradients are replaced by scaled copies, never written in place, since a
// gradient tensor may be shared. max_norm must be positive (ValueError).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace tranq::optim
