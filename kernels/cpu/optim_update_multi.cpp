// Reference multi-tensor optimizer updates: every argument checked first (so a bad entry
// changes nothing), then the single-parameter update for each entry with its own learning rate.
#include <cstdint>
#include <vector>

#include "kernels/optim_update.h"

namespace tranq::kernels::cpu {

void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<double>& lrs,
                      double momentum, double dampening, double weight_decay, bool nesterov,
                      bool first_step) {
  const bool use_momentum = momentum != 0.0;
  if (use_momentum) {
    check_multi_update_args("multi_sgd_update", params, grads, {&momentum_bufs}, lrs);
  } else {
    check_multi_update_args("multi_sgd_update", params, grads, {}, lrs);
  }
  for (size_t i = 0; i < params.size(); ++i)
    cpu::sgd_update(params[i], grads[i], use_momentum ? momentum_bufs[i] : Tensor(), lrs[i],
                    momentum, dampening, weight_decay, nesterov, first_step);
}

void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& lrs, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, const std::vector<int64_t>& steps) {
  check_multi_update_args("multi_adam_update", params, grads, {&exp_avgs, &exp_avg_sqs}, lrs);
  TRANQ_CHECK(steps.size() == params.size(), "multi_adam_update: {} params but {} step counts",
              params.size(), steps.size());
  for (size_t i = 0; i < steps.size(); ++i)
    TRANQ_CHECK(steps[i] >= 1, "multi_adam_update: steps[{}] = {}; steps count updates from 1", i,
                steps[i]);
  for (size_t i = 0; i < params.size(); ++i)
    cpu::adam_update(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], lrs[i], beta1, beta2, eps,
                     weight_decay, decoupled, steps[i]);
}

namespace {
// The table's entries for each param, after the table checks (a CPU table: plain reads).
std::vector<double> table_lrs(const char* op, const std::vector<Tensor>& params,
                              const Tensor& lr_table, const std::vector<int64_t>& lr_index) {
  check_lr_table(op, params, lr_table, lr_index);
  TRANQ_CHECK(lr_table.device().is_cpu(), "{}: the CPU version got lr_table {}", op,
              tensor_str(lr_table));
  const double* t = lr_table.data<double>();
  std::vector<double> lrs(lr_index.size());
  for (size_t i = 0; i < lr_index.size(); ++i) lrs[i] = t[lr_index[i]];
  return lrs;
}
}  // namespace

void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const Tensor& lr_table,
                      const std::vector<int64_t>& lr_index, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool first_step) {
  multi_sgd_update(params, grads, momentum_bufs,
                   table_lrs("multi_sgd_update", params, lr_table, lr_index), momentum, dampening,
                   weight_decay, nesterov, first_step);
}

void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const Tensor& lr_table, const std::vector<int64_t>& lr_index, double beta1,
                       double beta2, double eps, double weight_decay, bool decoupled,
                       const std::vector<int64_t>& steps) {
  multi_adam_update(params, grads, exp_avgs, exp_avg_sqs,
                    table_lrs("multi_adam_update", params, lr_table, lr_index), beta1, beta2, eps,
                    weight_decay, decoupled, steps);
}

}  // namespace tranq::kernels::cpu
