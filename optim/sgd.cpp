// torch.optim.SGD: L2 weight decay into the gradient, momentum with dampening, Nesterov.
#include <cmath>

#include "kernels/optim_update.h"
#include "optim/optimizer.h"

namespace tranq::optim {
namespace {

class Sgd final : public Optimizer {
 public:
  explicit Sgd(std::vector<ParamGroup> groups) : Optimizer(std::move(groups)) {
    check_hyperparameters();
  }
  std::string name() const override { return "sgd"; }

  void step() override {
    for_each_update([](const ParamGroup& g, size_t i, ParamState& s, const Tensor& grad) {
      const Tensor& p = g.params[i];
      // The buffer starts as the first (decayed) gradient, so new memory needs no zeroing.
      bool first = false;
      if (g.momentum != 0.0 && s.buffers.empty()) {
        s.buffers.push_back(Tensor::empty_like(p));
        first = true;
      }
      const Tensor buf = g.momentum != 0.0 ? s.buffers[0] : Tensor();
      kernels::sgd_update(p, grad, buf, g.lr, g.momentum, g.dampening, g.weight_decay, g.nesterov,
                          first);
    });
  }

 protected:
  std::vector<std::string> buffer_names(const ParamGroup& g) const override {
    if (g.momentum == 0.0) return {};
    return {"momentum_buffer"};
  }
  void check_group(const ParamGroup& g, size_t index) const override {
    TRANQ_CHECK(std::isfinite(g.momentum) && g.momentum >= 0,
                "sgd: group {} has invalid momentum {}; need >= 0", index, g.momentum);
    TRANQ_CHECK(std::isfinite(g.dampening), "sgd: group {} has invalid dampening {}", index,
                g.dampening);
    TRANQ_CHECK(!g.nesterov || (g.momentum > 0 && g.dampening == 0),
                "sgd: group {}: Nesterov momentum requires momentum > 0 and zero dampening "
                "(got momentum {}, dampening {})",
                index, g.momentum, g.dampening);
  }
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(std::vector<ParamGroup> groups) {
  return std::make_unique<Sgd>(std::move(groups));
}

}  // namespace tranq::optim
