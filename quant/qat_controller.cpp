#include "quant/qat_controller.h"

#include <algorithm>
#include <utility>

#include "kernels/qat_fused.h"
#include "kernels/transition_stats.h"

namespace tranq::quant {

namespace {

// The passes' default share of a step that counts as near a transition point.
constexpr double kNearFraction = 0.1;
// Counts tables kept for sync_for_logging(): the first allocation, and the most steps held
// (1.6 KB per step for 50 layers). When that many are pending (a trainer that never logs),
// after_step syncs them without a callback: their rates are dropped, not replayed.
constexpr int64_t kHistoryStart = 64;
constexpr int64_t kHistoryMax = int64_t{1} << 14;

LayerTransitions rates(const std::string& name, const kernels::TransitionCounts& c) {
  LayerTransitions l;
  l.name = name;
  l.counts = c;
  const double n = static_cast<double>(std::max<int64_t>(c.numel, 1));
  l.tr = static_cast<double>(c.changed) / n;
  // This step's share of its transitions (0 without any). Over several steps it is not the mean
  // of these, whose denominators differ: apps/metrics.h sums the counts instead.
  l.osc = static_cast<double>(c.oscillated) / static_cast<double>(std::max<int64_t>(c.changed, 1));
  l.near = static_cast<double>(c.near) / n;
  return l;
}
}  // namespace

QatController::QatController(std::vector<std::pair<std::string, QuantizedLayer*>> layers,
                             std::vector<size_t> layer_groups,
                             std::unique_ptr<optim::TrsController> trs)
    : layers_(std::move(layers)), groups_(std::move(layer_groups)), trs_(std::move(trs)) {
  TRANQ_CHECK(groups_.size() == layers_.size(), "QatController: {} layers but {} groups",
              layers_.size(), groups_.size());
  TRANQ_CHECK(!trs_ || trs_->num_layers() == layers_.size(),
              "QatController: the TRS controller has {} layers, the model {}",
              trs_ ? trs_->num_layers() : 0, layers_.size());
  last_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) last_[i].name = layers_[i].first;
}

void QatController::initialise() {
  settle();
  pending_steps_.clear();
  for (size_t i = 0; i < layers_.size(); ++i) {
    QuantizedLayer* q = layers_[i].second;
    q->drop_prepared_weight();
    last_[i] = rates(layers_[i].first, kernels::weight_transition_init(
                                           q->weight().detach(), q->weight_scale().detach(),
                                           q->weight_range(), q->codes(), q->prev_codes()));
  }
}

void QatController::before_step(optim::Optimizer& opt) {
  if (!trs_) return;
  settle();
  auto& groups = opt.param_groups();
  if (dev_) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      optim::ParamGroup& g = groups.at(groups_[i]);
      g.lr_table = dev_->talr();
      g.lr_table_index = static_cast<int64_t>(i);
    }
    return;
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    optim::ParamGroup& g = groups.at(groups_[i]);
    if (g.lr_table.defined()) g.lr_table = Tensor();  // left the device path
    g.lr = trs_->talr(i);
  }
}

bool QatController::device_path() const {
  if (layers_.empty()) return false;
  const Device d = layers_[0].second->weight().device();
  if (!d.is_cuda() && !force_device_path_) return false;
  for (const auto& [name, q] : layers_)
    if (q->weight().device() != d) return false;
  return true;
}

void QatController::settle() {
  const bool want = device_path();
  const Device d = want ? layers_[0].second->weight().device() : Device::cpu();
  if (on_device_ && (!want || device_ != d)) {
    sync_for_logging();
    dev_.reset();
    history_ = Tensor();
    on_device_ = false;
  }
  if (want && !on_device_) {
    on_device_ = true;
    device_ = d;
    if (trs_) dev_ = std::make_unique<optim::TrsDeviceState>(*trs_, d);
  }
}

void QatController::device_after_step(int64_t step) {
  const int64_t n = static_cast<int64_t>(layers_.size());
  const int64_t used = static_cast<int64_t>(pending_steps_.size());
  if (used == kHistoryMax) {
    sync_for_logging();
    return device_after_step(step);
  }
  if (!history_.defined() || used == history_.size(0)) {
    const int64_t cap = std::min(kHistoryMax, std::max(kHistoryStart, 2 * used));
    Tensor grown = Tensor::empty({cap, n, kernels::kCountColumns}, DType::i64, device_);
    if (used > 0) grown.narrow(0, 0, used).copy_(history_.narrow(0, 0, used));  // rare: syncs
    history_ = grown;
  }
  const Tensor table = history_.select(0, used);
  for (size_t i = 0; i < layers_.size(); ++i) {
    QuantizedLayer* q = layers_[i].second;
    const Tensor w = q->weight().detach(), scale = q->weight_scale().detach();
    const int64_t row = static_cast<int64_t>(i);
    if (const Tensor y = prepared_buffer(i); y.defined()) {
      kernels::quantize_weight_and_count_into(w, scale, q->weight_range(), y, q->codes(),
                                              q->prev_codes(), kNearFraction, table, row);
      q->set_prepared_weight(y);
    } else {
      kernels::weight_transition_pass_into(w, scale, q->weight_range(), q->codes(),
                                           q->prev_codes(), kNearFraction, table, row);
    }
  }
  if (dev_) dev_->update(step, table);
  pending_steps_.push_back(step);
}

Tensor QatController::pending_counts() const {
  if (pending_steps_.empty()) return Tensor();
  return history_.narrow(0, 0, static_cast<int64_t>(pending_steps_.size()));
}

std::vector<int64_t> QatController::fetch_pending_counts() const {
  const size_t steps = pending_steps_.size(), n = layers_.size();
  if (steps == 0) return {};
  std::vector<int64_t> c = pending_counts().to(Device::cpu()).to_vector<int64_t>();
  for (size_t p = 0; p < steps; ++p)
    for (size_t i = 0; i < n; ++i) {
      const int64_t changed = c[(p * n + i) * kernels::kCountColumns + kernels::kCountChanged];
      TRANQ_CHECK(changed >= 0,
                  "quantized layer '{}': {} weight scale values were zero or not finite at step "
                  "{}; its codes and TALR were left unchanged from then on (initialise the "
                  "scales, or lower the learning rate if training diverged)",
                  layers_[i].first, -changed, pending_steps_[p]);
    }
  return c;
}

void QatController::sync_for_logging(const std::function<void(const QatController&)>& each_step) {
  if (!on_device_) return;
  const size_t steps = pending_steps_.size(), n = layers_.size();
  if (steps > 0) {
    const std::vector<int64_t> c = fetch_pending_counts();  // raises before anything is replayed
    for (size_t p = 0; p < steps; ++p) {
      for (size_t i = 0; i < n; ++i) {
        const int64_t* row = c.data() + (p * n + i) * kernels::kCountColumns;
        kernels::TransitionCounts k;
        k.numel = row[kernels::kCountNumel];
        k.changed = row[kernels::kCountChanged];
        k.oscillated = row[kernels::kCountOscillated];
        k.near = row[kernels::kCountNear];
        last_[i] = rates(layers_[i].first, k);
      }
      if (each_step) each_step(*this);
    }
    pending_steps_.clear();
  }
  if (dev_) dev_->sync_to(*trs_);
}

void QatController::after_step(int64_t step) {
  settle();
  if (on_device_) return device_after_step(step);
  std::vector<double> k(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    QuantizedLayer* q = layers_[i].second;
    const Tensor w = q->weight().detach(), scale = q->weight_scale().detach();
    kernels::TransitionCounts c;
    if (const Tensor y = prepared_buffer(i); y.defined()) {
      c = kernels::quantize_weight_and_count(w, scale, q->weight_range(), y, q->codes(),
                                             q->prev_codes(), kNearFraction);
      q->set_prepared_weight(y);
    } else {
      c = kernels::weight_transition_pass(w, scale, q->weight_range(), q->codes(), q->prev_codes(),
                                          kNearFraction);
    }
    last_[i] = rates(layers_[i].first, c);
    k[i] = last_[i].tr;
  }
  if (trs_) trs_->update(step, k);
}

Tensor QatController::prepared_buffer(size_t i) const {
  if (!prepare_weights_) return Tensor();
  const Tensor& w = layers_[i].second->weight();
  return Tensor::empty(w.shape(), w.dtype(), w.device());
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

NamedTensors QatController::state_tensors() const {
  if (on_device_) {
    // A bad weight scale froze a layer's codes (and TALR): refuse to checkpoint that state, as
    // the next sync would.
    fetch_pending_counts();  // steps not synced yet
    if (!dev_) return {};
    dev_->check_valid();  // and any step whose error was raised before but not dealt with
    return dev_->state_tensors();
  }
  return trs_ ? trs_->state_tensors() : NamedTensors{};
}

void QatController::load_state(const NamedTensors& t) {
  // Restoring a checkpoint replaces the weights the prepared values were computed from.
  for (auto& [name, q] : layers_) q->drop_prepared_weight();
  if (trs_) trs_->load_state(t);
  if (dev_) dev_->load_from(*trs_);
  pending_steps_.clear();  // counts of steps before the restored state
}

}  // namespace tranq::quant
