#include "optim/trs_device.h"

#include <string>
#include <utility>

#include "core/error.h"
#include "kernels/trs_update.h"

namespace tranq::optim {

namespace {
// The f64 [L] state vectors in TrsController::state_tensors() order.
const char* const kVectors[] = {"trs.K", "trs.s", "trs.U", "trs.k"};
}  // namespace

TrsDeviceState::TrsDeviceState(const TrsController& c, Device device)
    : names_(c.layer_names()),
      device_(device),
      schedule_(make_lr_schedule(c.options().schedule)),
      r0_(c.initial_target()) {
  step_.momentum = c.momentum();
  step_.eta = c.gain();
  step_.talr_init = c.options().talr_init;
  step_.additive = c.options().rule == TalrRule::additive;
  const int64_t n = static_cast<int64_t>(names_.size());
  K_ = Tensor::empty({n}, DType::f64, device_);
  s_ = Tensor::empty({n}, DType::f64, device_);
  U_ = Tensor::empty({n}, DType::f64, device_);
  k_ = Tensor::empty({n}, DType::f64, device_);
  bad_step_ = Tensor::zeros({n}, DType::i64, device_);
  load_from(c);
}

double TrsDeviceState::target(int64_t step) const {
  return r0_ * schedule_->factor(step);
}

void TrsDeviceState::update(int64_t step, const Tensor& counts) {
  check_defined(counts, "TrsDeviceState::update", "counts");
  TRANQ_CHECK(counts.device() == device_ && counts.dim() == 2 &&
                  counts.size(0) == static_cast<int64_t>(names_.size()),
              "TrsDeviceState::update: expected an i64 [{}, 4] counts table on {}, got {}",
              names_.size(), device_.str(), tensor_str(counts));
  TRANQ_CHECK(step >= 0, "TrsDeviceState::update: step must be >= 0, got {}", step);
  kernels::TrsStep p = step_;
  p.target = target(step);
  p.step = step;
  kernels::trs_update(counts, p, K_, s_, U_, k_, bad_step_);
  ++updates_;
}

void TrsDeviceState::check_valid() const {
  const std::vector<int64_t> bad = bad_step_.to(Device::cpu()).to_vector<int64_t>();
  std::string msg;
  for (size_t i = 0; i < bad.size(); ++i)
    if (bad[i] != 0) msg += fmt::format("\n  {}: first at step {}", names_[i], bad[i] - 1);
  TRANQ_CHECK(msg.empty(),
              "trs: the transition counts of some layers were invalid (a weight scale that is zero "
              "or not finite; their codes and TALR were left unchanged from then on); initialise "
              "the weight scales, or lower the learning rate if training diverged:{}",
              msg);
}

void TrsDeviceState::sync_to(TrsController& c) const {
  TRANQ_CHECK(c.layer_names() == names_,
              "TrsDeviceState::sync_to: the controller's layers differ from this state's");
  check_valid();
  NamedTensors host;
  const Tensor* src[] = {&K_, &s_, &U_, &k_};
  for (size_t v = 0; v < 4; ++v) host.emplace_back(kVectors[v], src[v]->to(Device::cpu()));
  host.emplace_back("trs.updates", Tensor::from_vector<int64_t>({updates_}, {}));
  c.load_state(host);  // copies the values out of host
}

void TrsDeviceState::load_from(const TrsController& c) {
  TRANQ_CHECK(c.layer_names() == names_,
              "TrsDeviceState::load_from: the controller's layers differ from this state's");
  const Tensor* dst[] = {&K_, &s_, &U_, &k_};
  for (const auto& [name, t] : c.state_tensors()) {
    for (size_t v = 0; v < 4; ++v)
      if (name == kVectors[v]) dst[v]->copy_(t);
    if (name == "trs.updates") updates_ = t.to(Device::cpu()).data<int64_t>()[0];
  }
  bad_step_.zero_();
}

NamedTensors TrsDeviceState::state_tensors() const {
  NamedTensors out;
  const Tensor* src[] = {&K_, &s_, &U_, &k_};
  for (size_t v = 0; v < 4; ++v) out.emplace_back(kVectors[v], src[v]->clone());
  out.emplace_back("trs.updates", Tensor::from_vector<int64_t>({updates_}, {}));
  return out;
}

}  // namespace tranq::optim
