#pragma once
// Fused optimizer updates: one pass over a parameter reads its gradient and state and writes the
// parameter and state in place, with the exact arithmetic of torch.optim (f32 and f64). The
// gradient is only read (it may alias other tensors). Every tensor is contiguous, of the
// parameter's shape, dtype and device.
#include <cstdint>

#include "core/tensor.h"

namespace tranq::kernels {

// torch.optim.SGD for one parameter:
//   d = grad + weight_decay * param
//   momentum != 0: buf = first_step ? d : momentum * buf + (1 - dampening) * d
//                  d = nesterov ? d + momentum * buf : buf
//   param -= lr * d
// momentum_buf is only touched when momentum != 0 (it may be undefined otherwise); with
// first_step its old contents are ignored, so it may be freshly allocated memory.
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step);

// torch.optim.Adam (decoupled = false: weight decay added to the gradient) and torch.optim.AdamW
// (decoupled = true: param *= 1 - lr * weight_decay first). step is this parameter's update
// count including this one (1 on the first update), for the bias corrections:
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
//   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// exp_avg and exp_avg_sq start as zeros.
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step);

namespace cpu {
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step);
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step);
}  // namespace cpu

}  // namespace tranq::kernels
