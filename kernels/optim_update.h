#pragma once
// Fused optimizer updates: one pass over a parameter reads its gradient and state and writes the
// parameter and state in place, with the exact arithmetic of torch.optim (f32 and f64). The
// gradient is only read (it may alias other tensors). Every tensor is contiguous, of the
// parameter's shape, dtype and device.
#include <cstdint>
#include <initializer_list>
#include <vector>

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

// Multi-tensor forms: the update above for every parameter of a list, each with its own
// learning rate lrs[i] (transition-adaptive learning rates give every quantized layer its own),
// in one pass; on CUDA one kernel launch covers the whole list (a table of pointers and sizes
// in device memory). The lists run in parallel (params[i] with grads[i], its state and lrs[i]),
// all tensors share one dtype and device, and the parameters are distinct tensors.
// momentum_bufs is ignored (may be empty) when momentum == 0; steps[i] is params[i]'s update count
// as in adam_update. Every argument is checked before any parameter changes. The CPU version is the
// loop over sgd_update / adam_update (kernels/cpu/optim_update_multi.cpp).
void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<double>& lrs,
                      double momentum, double dampening, double weight_decay, bool nesterov,
                      bool first_step);
void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& lrs, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, const std::vector<int64_t>& steps);

// The same with learning rates read on the device: params[i] uses lr_table[lr_index[i]], where
// lr_table is a contiguous f64 [n] tensor on the params' device (e.g. the TALRs that
// kernels/trs_update.h keeps there) and lr_index a host list, one entry per param, each in
// [0, n). Nothing is read back to the host on CUDA: the index goes into the launch table and the
// kernel derives every lr-dependent constant from the table entry, rounding exactly as the host
// does for the host-lrs form, so both CUDA forms agree bit for bit given equal rates. The CPU
// version reads the table and runs the host-lrs CPU version. Checks as above, plus the table's.
void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const Tensor& lr_table,
                      const std::vector<int64_t>& lr_index, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool first_step);
void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const Tensor& lr_table, const std::vector<int64_t>& lr_index, double beta1,
                       double beta2, double eps, double weight_decay, bool decoupled,
                       const std::vector<int64_t>& steps);

// lr_table: defined contiguous f64 1-D; lr_index as long as params, entries in range; when
// params is not empty, the table is on params[0]'s device.
void check_lr_table(const char* op, const std::vector<Tensor>& params, const Tensor& lr_table,
                    const std::vector<int64_t>& lr_index);

// The multi-tensor argument checks every backend runs first: equal list lengths (each state
// list and lrs as long as params), every tensor defined and contiguous with its parameter's
// shape, params[0]'s dtype (f32/f64) and device, distinct parameters.
void check_multi_update_args(const char* op, const std::vector<Tensor>& params,
                             const std::vector<Tensor>& grads,
                             std::initializer_list<const std::vector<Tensor>*> states,
                             const std::vector<double>& lrs);
// The same with the number of learning rates only (the lr_table forms).
void check_multi_update_args(const char* op, const std::vector<Tensor>& params,
                             const std::vector<Tensor>& grads,
                             std::initializer_list<const std::vector<Tensor>*> states,
                             size_t num_lrs);

namespace cpu {
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step);
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step);
void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<double>& lrs,
                      double momentum, double dampening, double weight_decay, bool nesterov,
                      bool first_step);
void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& lrs, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, const std::vector<int64_t>& steps);
void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const Tensor& lr_table,
                      const std::vector<int64_t>& lr_index, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool first_step);
void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const Tensor& lr_table, const std::vector<int64_t>& lr_index, double beta1,
                       double beta2, double eps, double weight_decay, bool decoupled,
                       const std::vector<int64_t>& steps);
}  // namespace cpu

// CUDA versions (kernels/cuda/optim_update.cu). Each operation of the formulas above is rounded
// on its own (no contraction into fused multiply-adds), as PyTorch's op-by-op tensor math is.
// The CPU build may contract some of them (the compiler's choice), so CUDA and CPU agree within
// a few ulp of T per element (tests/test_cuda_kernels.cpp: relative 1e-6 for f32, 1e-14 for f64,
// of max(|param|, |update|)); the single and the multi-tensor CUDA forms agree bit for bit.
namespace cuda {
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step);
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step);
void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<double>& lrs,
                      double momentum, double dampening, double weight_decay, bool nesterov,
                      bool first_step);
void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& lrs, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, const std::vector<int64_t>& steps);
void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const Tensor& lr_table,
                      const std::vector<int64_t>& lr_index, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool first_step);
void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const Tensor& lr_table, const std::vector<int64_t>& lr_index, double beta1,
                       double beta2, double eps, double weight_decay, bool decoupled,
                       const std::vector<int64_t>& steps);
}  // namespace cuda

}  // namespace tranq::kernels
