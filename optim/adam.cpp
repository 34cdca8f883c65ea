// torch.optim.Adam (L2 weight decay into the gradient) and torch.optim.AdamW (decoupled decay),
// with bias correction from each parameter's own update count.
#include <cmath>

#include "kernels/optim_update.h"
#include "optim/optimizer.h"

namespace tranq::optim {
namespace {

class Adam final : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, bool decoupled)
      : Optimizer(std::move(groups)), decoupled_(decoupled) {
    check_hyperparameters();
  }
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }

  void step() override {
    const bool decoupled = decoupled_;
    for_each_update([decoupled](const ParamGroup& g, size_t i, ParamState& s, const Tensor& grad) {
      const Tensor& p = g.params[i];
      if (s.buffers.empty()) {
        s.buffers.push_back(Tensor::zeros_like(p));
        s.buffers.push_back(Tensor::zeros_like(p));
      }
      kernels::adam_update(p, grad, s.buffers[0], s.buffers[1], g.lr, g.beta1, g.beta2, g.eps,
                           g.weight_decay, decoupled, s.step);
    });
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
