#include "quant/qat_controller.h"

namespace tranq::quant {

namespace {
LayerTransitions rates(const std::string& name, const kernels::TransitionCounts& c) {
  LayerTransitions l;
  l.name = name;
  l.counts = c;
  const double n = static_cast<double>(std::max<int64_t>(c.numel, 1));
  l.tr = static_cast<double>(c.changed) / n;
  l.osc = static_cast<double>(c.oscillated) / static_cast<double>(std::max<int64_t>(c.changed, 1));
  l.near = static_cast<double>(c.near) / n;
  return l;
}
}  // namespace

QatController::QatController(std::vector<std::pair<std::string, QuantizedLayer*>> layers,
                             std::vector<size_t> layer_groups, std::unique_ptr<optim::TrsController> trs)
    : layers_(std::move(layers)), groups_(std::move(layer_groups)), trs_(std::move(trs)) {
  TRANQ_CHECK(groups_.size() == layers_.size(), "QatController: {} layers but {} groups", layers_.size(),
              groups_.size());
  TRANQ_CHECK(!trs_ || trs_->num_layers() == layers_.size(),
              "QatController: the TRS controller has {} layers, the model {}", trs_ ? trs_->num_layers() : 0,
              layers_.size());
  last_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) last_[i].name = layers_[i].first;
}

void QatController::initialise() {
  for (size_t i = 0; i < layers_.size(); ++i) {
    QuantizedLayer* q = layers_[i].second;
    last_[i] = rates(layers_[i].first,
                     kernels::weight_transition_init(q->weight().detach(), q->weight_scale().detach(),
                                                     q->weight_range(), q->codes(), q->prev_codes()));
  }
}

void QatController::before_step(optim::Optimizer& opt) const {
  if (!trs_) return;
  auto& groups = opt.param_groups();
  for (size_t i = 0; i < layers_.size(); ++i) groups.at(groups_[i]).lr = trs_->talr(i);
}

void QatController::after_step(int64_t step) {
  std::vector<double> k(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    QuantizedLayer* q = layers_[i].second;
    last_[i] = rates(layers_[i].first,
                     kernels::weight_transition_pass(q->weight().detach(), q->weight_scale().detach(),
                                                     q->weight_range(), q->codes(), q->prev_codes()));
    k[i] = last_[i].tr;
  }
  if (trs_) trs_->update(step, k);
}

LayerTransitions QatController::total() const {
  kernels::TransitionCounts sum;
  for (const auto& l : last_) {
    sum.numel += l.counts.numel;
    sum.changed += l.counts.changed;
    sum.oscillated += l.counts.oscillated;
    sum.near += l.counts.near;
  }
  return rates("all", sum);
}

NamedTensors QatController::state_tensors() const { return trs_ ? trs_->state_tensors() : NamedTensors{}; }

void QatController::load_state(const NamedTensors& t) {
  if (trs_) trs_->load_state(t);
}

}  // namespace tranq::quant
