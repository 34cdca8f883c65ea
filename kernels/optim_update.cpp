#include "kernels/optim_update.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step) {
  TRANQ_DISPATCH(sgd_update, param, param, grad, momentum_buf, lr, momentum, dampening,
                 weight_decay, nesterov, first_step);
}
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step) {
  TRANQ_DISPATCH(adam_update, param, param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                 weight_decay, decoupled, step);
}
}  // namespace tranq::kernels
