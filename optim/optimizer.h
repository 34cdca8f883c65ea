#pragma once
// Optimizers over parameter groups with torch.optim semantics (SGD, Adam, AdamW). Each group
// carries its own hyperparameters; the trainer sets group.lr every step from an LrSchedule
// (lr = base_lr * factor). Updates run as one fused kernel per parameter
// (kernels/optim_update.h) and never modify gradients. A group may instead take its learning rate
// from a device table (ParamGroup::lr_table): all such groups are then updated by one
// multi-tensor call per step, reading the rates on the device.
//
// State for exact resume: per-parameter buffers named "<param name>.<buffer>"
// ("layer1.0.conv1.weight.momentum_buffer", ".exp_avg", ".exp_avg_sq") and a per-parameter
// update counter "<param name>.step" (i64 scalar; a parameter without a gradient in some step
// is not updated and its counter stays behind, as in PyTorch). Buffers are allocated on a
// parameter's first update, so only parameters with step > 0 have them.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tranq::optim {

struct ParamGroup {
  std::vector<std::string> names;  // parameter names (state dict names), same order as params
  std::vector<Tensor> params;
  double lr = 0.1;       // the CURRENT lr; the trainer sets it each step from a schedule
  double base_lr = 0.1;  // the lr the schedule scales (set to lr by the optimizer's constructor)
  double momentum = 0.0;
  bool nesterov = false;
  double dampening = 0.0;                         // SGD
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam/AdamW
  double weight_decay = 0.0;
  // Device learning rate (optional). When lr_table is defined (a contiguous f64 [n] tensor on
  // the params' device), this group's params use lr_table[lr_table_index] instead of lr, read
  // by the update kernel, so the rate never visits the host: QatController puts the TALRs of
  // optim::TrsDeviceState here on a CUDA device. All groups with a table are updated together
  // by one kernels::multi_sgd_update / multi_adam_update call per set of equal hyperparameters
  // (and table), with the same arithmetic as the per-parameter kernels. lr is still checked,
  // and kept in state_metadata(), but does not drive these params.
  Tensor lr_table;
  int64_t lr_table_index = 0;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every param with a defined grad; increments steps(). Hyperparameters may be
  // edited through param_groups() between steps (they are checked here); the groups'
  // membership may not (ValueError).
  virtual void step() = 0;
  void zero_grad();  // drops grads of all params (grad() becomes undefined)
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  int64_t steps() const { return steps_; }
  virtual std::string name() const = 0;  // "sgd" | "adam" | "adamw"

  // Everything needed for exact resume besides steps(): copies (on the params' devices) of the
  // per-parameter buffers and step counters described above.
  virtual NamedTensors state_tensors() const;
  // Restores what state_tensors() returned (any device; copied to the params' devices) and
  // the optimizer step count. ValueError listing every missing, unexpected or mismatched
  // (shape, dtype) tensor; nothing is changed then.
  virtual void load_state(const NamedTensors& tensors, int64_t steps);
  // Scalars worth keeping beside the tensors, as strings: "optimizer", "steps", and per group
  // "group.<i>.lr" / "group.<i>.base_lr".
  std::map<std::string, std::string> state_metadata() const;

 protected:
  // Validates the groups (names match params, no parameter twice, f32/f64 contiguous params)
  // and sets every group's base_lr = lr. Derived constructors call check_hyperparameters().
  explicit Optimizer(std::vector<ParamGroup> groups);

  struct ParamState {
    int64_t step = 0;             // updates applied to this parameter
    std::vector<Tensor> buffers;  // in the order of buffer_names(); empty until the first update
  };
  // Names of the per-parameter buffers for a group's settings (e.g. {"momentum_buffer"}).
  virtual std::vector<std::string> buffer_names(const ParamGroup& g) const = 0;
  // ValueError naming the group when a hyperparameter is out of range.
  virtual void check_group(const ParamGroup& g, size_t index) const = 0;
  void check_hyperparameters() const;
  // Checks membership and hyperparameters, then calls update(group, i, state, grad) for every
  // parameter with a defined gradient (grad made contiguous, of the param's shape/dtype/device)
  // after incrementing state.step; finally increments steps().
  template <class F>
  void for_each_update(F&& update);

  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]

 private:
  void check_membership() const;
  Tensor checked_grad(const ParamGroup& g, size_t i) const;
  int64_t steps_ = 0;
  std::vector<std::vector<Tensor>> members_;  // the params as constructed, to detect edits
};

template <class F>
void Optimizer::for_each_update(F&& update) {
  check_membership();
  check_hyperparameters();
  // Every gradient is checked before any parameter changes, so a bad one leaves all untouched.
  std::vector<std::vector<Tensor>> grads(groups_.size());
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      grads[gi].push_back(checked_grad(groups_[gi], i));
    }
  }
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    for (size_t i = 0; i < g.params.size(); ++i) {
      if (!grads[gi][i].defined()) continue;
      ParamState& s = state_[gi][i];
      ++s.step;
      update(g, i, s, grads[gi][i]);
      g.params[i].bump_version();  // a graph that saved the old values cannot backward now
    }
  }
  ++steps_;
}

// PyTorch torch.optim.SGD semantics incl. nesterov, dampening, L2 weight decay; first step
// buf = grad. Buffer: "momentum_buffer" (only with momentum != 0).
std::unique_ptr<Optimizer> make_sgd(std::vector<ParamGroup> groups);
// torch.optim.Adam (L2 decay added to grad), bias correction. Buffers: "exp_avg", "exp_avg_sq".
std::unique_ptr<Optimizer> make_adam(std::vector<ParamGroup> groups);
// torch.optim.AdamW (decoupled decay: p *= 1 - lr*wd). Buffers as Adam.
std::unique_ptr<Optimizer> make_adamw(std::vector<ParamGroup> groups);
// name: "sgd" | "adam" | "adamw"; ValueError listing valid names otherwise.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups);

}  // namespace tranq::optim
