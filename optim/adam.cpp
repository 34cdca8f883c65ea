// torch.optim.Adam (L2 weight decay into the gradient) and torch.optim.AdamW (decoupled decay),
// with bias correction from each parameter's own update count.
#include <cmath>
#include <vector>

#include "kernels/optim_update.h"
#include "optim/optimizer.h"

namespace tranq::optim {
namespace {

// The params of lr_table groups that one kernels::multi_adam_update call updates: equal
// hyperparameters, table, dtype and device.
struct AdamBatch {
  const ParamGroup* g;
  std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs;
  std::vector<int64_t> index, steps;
};

AdamBatch& batch_for(std::vector<AdamBatch>& batches, const ParamGroup& g, const Tensor& p) {
  for (AdamBatch& b : batches) {
    const ParamGroup& h = *b.g;
    if (h.beta1 == g.beta1 && h.beta2 == g.beta2 && h.eps == g.eps &&
        h.weight_decay == g.weight_decay && h.lr_table.same_as(g.lr_table) &&
        b.params[0].dtype() == p.dtype() && b.params[0].device() == p.device())
      return b;
  }
  batches.push_back(AdamBatch{&g, {}, {}, {}, {}, {}, {}});
  return batches.back();
}

class Adam final : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, bool decoupled)
      : Optimizer(std::move(groups)), decoupled_(decoupled) {
    check_hyperparameters();
  }
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }

  void step() override {
    const bool decoupled = decoupled_;
    std::vector<AdamBatch> batches;
    for_each_update(
        [decoupled, &batches](const ParamGroup& g, size_t i, ParamState& s, const Tensor& grad) {
          const Tensor& p = g.params[i];
          if (s.buffers.empty()) {
            s.buffers.push_back(Tensor::zeros_like(p));
            s.buffers.push_back(Tensor::zeros_like(p));
          }
          if (g.lr_table.defined()) {
            AdamBatch& b = batch_for(batches, g, p);
            b.params.push_back(p);
            b.grads.push_back(grad);
            b.exp_avgs.push_back(s.buffers[0]);
            b.exp_avg_sqs.push_back(s.buffers[1]);
            b.index.push_back(g.lr_table_index);
            b.steps.push_back(s.step);
            return;
          }
          kernels::adam_update(p, grad, s.buffers[0], s.buffers[1], g.lr, g.beta1, g.beta2, g.eps,
                               g.weight_decay, decoupled, s.step);
        });
    for (const AdamBatch& b : batches) {
      const ParamGroup& g = *b.g;
      kernels::multi_adam_update(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, g.lr_table, b.index,
                                 g.beta1, g.beta2, g.eps, g.weight_decay, decoupled, b.steps);
    }
  }

 protected:
  std::vector<std::string> buffer_names(const ParamGroup&) const override {
    return {"exp_avg", "exp_avg_sq"};
  }
  void check_group(const ParamGroup& g, size_t index) const override {
    TRANQ_CHECK(g.beta1 >= 0 && g.beta1 < 1 && g.beta2 >= 0 && g.beta2 < 1,
                "{}: group {} has betas ({}, {}); each must be in [0, 1)", name(), index, g.beta1,
                g.beta2);
    TRANQ_CHECK(std::isfinite(g.eps) && g.eps >= 0, "{}: group {} has invalid eps {}; need >= 0",
                name(), index, g.eps);
  }

 private:
  bool decoupled_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adam(std::vector<ParamGroup> groups) {
  return std::make_unique<Adam>(std::move(groups), false);
}
std::unique_ptr<Optimizer> make_adamw(std::vector<ParamGroup> groups) {
  return std::make_unique<Adam>(std::move(groups), true);
}

}  // namespace tranq::optim
