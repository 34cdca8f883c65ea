// torch.optim.SGD: L2 weight decay into the gradient, momentum with dampening, Nesterov.
#include <cmath>
#include <vector>

#include "kernels/optim_update.h"
#include "optim/optimizer.h"

namespace tranq::optim {
namespace {

// The params of lr_table groups that one kernels::multi_sgd_update call updates: equal
// hyperparameters, table, dtype, device and first-step flag.
struct SgdBatch {
  const ParamGroup* g;
  bool first;
  std::vector<Tensor> params, grads, bufs;
  std::vector<int64_t> index;
};

SgdBatch& batch_for(std::vector<SgdBatch>& batches, const ParamGroup& g, const Tensor& p,
                    bool first) {
  for (SgdBatch& b : batches) {
    const ParamGroup& h = *b.g;
    if (b.first == first && h.momentum == g.momentum && h.dampening == g.dampening &&
        h.weight_decay == g.weight_decay && h.nesterov == g.nesterov &&
        h.lr_table.same_as(g.lr_table) && b.params[0].dtype() == p.dtype() &&
        b.params[0].device() == p.device())
      return b;
  }
  batches.push_back(SgdBatch{&g, first, {}, {}, {}, {}});
  return batches.back();
}

class Sgd final : public Optimizer {
 public:
  explicit Sgd(std::vector<ParamGroup> groups) : Optimizer(std::move(groups)) {
    check_hyperparameters();
  }
  std::string name() const override { return "sgd"; }

  void step() override {
    std::vector<SgdBatch> batches;
    for_each_update([&batches](const ParamGroup& g, size_t i, ParamState& s, const Tensor& grad) {
      const Tensor& p = g.params[i];
      // The buffer starts as the first (decayed) gradient, so new memory needs no zeroing.
      bool first = false;
      if (g.momentum != 0.0 && s.buffers.empty()) {
        s.buffers.push_back(Tensor::empty_like(p));
        first = true;
      }
      const Tensor buf = g.momentum != 0.0 ? s.buffers[0] : Tensor();
      if (g.lr_table.defined()) {
        SgdBatch& b = batch_for(batches, g, p, first);
        b.params.push_back(p);
        b.grads.push_back(grad);
        if (buf.defined()) b.bufs.push_back(buf);
        b.index.push_back(g.lr_table_index);
        return;
      }
      kernels::sgd_update(p, grad, buf, g.lr, g.momentum, g.dampening, g.weight_decay, g.nesterov,
                          first);
    });
    for (const SgdBatch& b : batches) {
      const ParamGroup& g = *b.g;
      kernels::multi_sgd_update(b.params, b.grads, b.bufs, g.lr_table, b.index, g.momentum,
                                g.dampening, g.weight_decay, g.nesterov, b.first);
    }
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
