#include "kernels/optim_update.h"

#include <algorithm>

#include "kernels/dispatch.h"

namespace tranq::kernels {

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step) {
  check_defined(param, "sgd_update", "param");
  check_same_device("sgd_update", param, {&grad, &momentum_buf});
  TRANQ_DISPATCH_CUDA(sgd_update, param, param, grad, momentum_buf, lr, momentum, dampening,
                      weight_decay, nesterov, first_step);
}

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step) {
  check_defined(param, "adam_update", "param");
  check_same_device("adam_update", param, {&grad, &exp_avg, &exp_avg_sq});
  TRANQ_DISPATCH_CUDA(adam_update, param, param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                      weight_decay, decoupled, step);
}

void check_multi_update_args(const char* op, const std::vector<Tensor>& params,
                             const std::vector<Tensor>& grads,
                             std::initializer_list<const std::vector<Tensor>*> states,
                             const std::vector<double>& lrs) {
  check_multi_update_args(op, params, grads, states, lrs.size());
}

void check_lr_table(const char* op, const std::vector<Tensor>& params, const Tensor& lr_table,
                    const std::vector<int64_t>& lr_index) {
  check_defined(lr_table, op, "lr_table");
  TRANQ_CHECK(lr_table.dtype() == DType::f64 && lr_table.dim() == 1 && lr_table.is_contiguous(),
              "{}: lr_table must be a contiguous f64 vector, got {}", op, tensor_str(lr_table));
  TRANQ_CHECK(lr_index.size() == params.size(),
              "{}: {} params need as many lr_index entries, got {}", op, params.size(),
              lr_index.size());
  for (size_t i = 0; i < lr_index.size(); ++i)
    TRANQ_CHECK(lr_index[i] >= 0 && lr_index[i] < lr_table.numel(),
                "{}: lr_index[{}] = {} is outside lr_table {}", op, i, lr_index[i],
                tensor_str(lr_table));
  if (!params.empty() && params[0].defined())
    TRANQ_CHECK(lr_table.device() == params[0].device(),
                "{}: lr_table {} must be on the parameters' device ({})", op, tensor_str(lr_table),
                params[0].device().str());
}

void check_multi_update_args(const char* op, const std::vector<Tensor>& params,
                             const std::vector<Tensor>& grads,
                             std::initializer_list<const std::vector<Tensor>*> states,
                             size_t num_lrs) {
  TRANQ_CHECK(grads.size() == params.size() && num_lrs == params.size(),
              "{}: {} params need as many grads and learning rates, got {} and {}", op,
              params.size(), grads.size(), num_lrs);
  for (const std::vector<Tensor>* s : states)
    TRANQ_CHECK(s->size() == params.size(), "{}: {} params but a state list of {}", op,
                params.size(), s->size());
  if (params.empty()) return;
  check_defined(params[0], op, "params[0]");
  const Tensor& first = params[0];
  TRANQ_CHECK(is_floating(first.dtype()), "{}: parameters must be f32 or f64, got {}", op,
              tensor_str(first));
  auto check_like = [&](const Tensor& p, const Tensor& t, size_t i, const char* what) {
    TRANQ_CHECK(t.defined(), "{}: {}[{}] is undefined", op, what, i);
    TRANQ_CHECK(t.shape() == p.shape() && t.dtype() == first.dtype() &&
                    t.device() == first.device() && t.is_contiguous(),
                "{}: {}[{}] is {}, expected a contiguous {} {} on {} (like params[{}])", op, what,
                i, tensor_str(t), shape_str(p.shape()), dtype_name(first.dtype()),
                first.device().str(), i);
  };
  std::vector<const void*> data;
  data.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    check_like(p, p, i, "params");
    check_like(p, grads[i], i, "grads");
    for (const std::vector<Tensor>* s : states) check_like(p, (*s)[i], i, "state");
    if (p.numel() > 0) data.push_back(p.raw_data());
  }
  std::sort(data.begin(), data.end());
  TRANQ_CHECK(std::adjacent_find(data.begin(), data.end()) == data.end(),
              "{}: a parameter appears twice in the list; each must be updated once", op);
}

void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<double>& lrs,
                      double momentum, double dampening, double weight_decay, bool nesterov,
                      bool first_step) {
  // An empty list has no device; the CPU version checks the lengths and does nothing.
  if (params.empty())
    return cpu::multi_sgd_update(params, grads, momentum_bufs, lrs, momentum, dampening,
                                 weight_decay, nesterov, first_step);
  check_defined(params[0], "multi_sgd_update", "params[0]");
  TRANQ_DISPATCH_CUDA(multi_sgd_update, params[0], params, grads, momentum_bufs, lrs, momentum,
                      dampening, weight_decay, nesterov, first_step);
}

void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& lrs, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, const std::vector<int64_t>& steps) {
  if (params.empty())
    return cpu::multi_adam_update(params, grads, exp_avgs, exp_avg_sqs, lrs, beta1, beta2, eps,
                                  weight_decay, decoupled, steps);
  check_defined(params[0], "multi_adam_update", "params[0]");
  TRANQ_DISPATCH_CUDA(multi_adam_update, params[0], params, grads, exp_avgs, exp_avg_sqs, lrs,
                      beta1, beta2, eps, weight_decay, decoupled, steps);
}

void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const Tensor& lr_table,
                      const std::vector<int64_t>& lr_index, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool first_step) {
  // An empty list runs the CPU version (it checks the lengths and does nothing), as above.
  if (params.empty())
    return cpu::multi_sgd_update(params, grads, momentum_bufs, lr_table, lr_index, momentum,
                                 dampening, weight_decay, nesterov, first_step);
  check_defined(params[0], "multi_sgd_update", "params[0]");
  check_same_device("multi_sgd_update", params[0], {&lr_table});
  TRANQ_DISPATCH_CUDA(multi_sgd_update, params[0], params, grads, momentum_bufs, lr_table, lr_index,
                      momentum, dampening, weight_decay, nesterov, first_step);
}

void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const Tensor& lr_table, const std::vector<int64_t>& lr_index, double beta1,
                       double beta2, double eps, double weight_decay, bool decoupled,
                       const std::vector<int64_t>& steps) {
  if (params.empty())
    return cpu::multi_adam_update(params, grads, exp_avgs, exp_avg_sqs, lr_table, lr_index, beta1,
                                  beta2, eps, weight_decay, decoupled, steps);
  check_defined(params[0], "multi_adam_update", "params[0]");
  check_same_device("multi_adam_update", params[0], {&lr_table});
  TRANQ_DISPATCH_CUDA(multi_adam_update, params[0], params, grads, exp_avgs, exp_avg_sqs, lr_table,
                      lr_index, beta1, beta2, eps, weight_decay, decoupled, steps);
}

}  // namespace tranq::kernels
