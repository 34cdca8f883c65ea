#include "optim/trs.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "core/error.h"
#include "kernels/trs_math.h"

namespace tranq::optim {

TalrRule parse_talr_rule(const std::string& s) {
  if (s == "multiplicative") return TalrRule::multiplicative;
  if (s == "additive") return TalrRule::additive;
  TRANQ_THROW(ValueError, "unknown TALR rule '{}': expected 'multiplicative' or 'additive'", s);
}

const char* talr_rule_name(TalrRule r) {
  return r == TalrRule::additive ? "additive" : "multiplicative";
}

double initial_target(const TrsOptions& o) {
  double r0 = o.target_tr;
  if (!(r0 > 0)) {
    TRANQ_CHECK(o.weight_bits >= 1, "trs: weight_bits must be >= 1, got {}", o.weight_bits);
    TRANQ_CHECK(std::isfinite(o.tr_factor) && o.tr_factor > 0,
                "trs: tr_factor must be > 0 when target_tr is unset, got {}", o.tr_factor);
    r0 = o.tr_factor * std::sqrt(static_cast<double>(o.weight_bits));
  }
  TRANQ_CHECK(std::isfinite(r0) && r0 > 0 && r0 <= 1,
              "trs: the initial target transition rate must be in (0, 1] (a share of weights "
              "per step), got {}; lower target_tr or tr_factor",
              r0);
  return r0;
}

double auto_momentum(int64_t total_steps) {
  if (total_steps <= 0) return 0.99;
  const double tau = std::clamp(static_cast<double>(total_steps) / 50.0, 10.0, 100.0);
  return 1.0 - 1.0 / tau;
}

double resolved_momentum(const TrsOptions& o) {
  TRANQ_CHECK(!std::isnan(o.momentum) && o.momentum < 1,
              "trs: momentum must be in [0, 1) (or < 0 for auto), got {}", o.momentum);
  return o.momentum < 0 ? auto_momentum(o.schedule.total_steps) : o.momentum;
}

double additive_gain(const TrsOptions& o) {
  if (o.talr_gain > 0) return o.talr_gain;
  return (1.0 - resolved_momentum(o)) * o.talr_init / initial_target(o);
}

TrsController::TrsController(TrsOptions opt, std::vector<std::string> layer_names)
    : opt_(std::move(opt)), names_(std::move(layer_names)) {
  TRANQ_CHECK(opt_.weight_bits >= 1, "trs: weight_bits must be >= 1, got {}", opt_.weight_bits);
  r0_ = optim::initial_target(opt_);
  TRANQ_CHECK(std::isfinite(opt_.talr_init) && opt_.talr_init > 0,
              "trs: talr_init (the initial TALR) must be > 0, got {}", opt_.talr_init);
  m_ = resolved_momentum(opt_);
  TRANQ_CHECK(std::isfinite(opt_.talr_gain), "trs: talr_gain must be finite, got {}",
              opt_.talr_gain);
  eta_ = additive_gain(opt_);
  schedule_ = make_lr_schedule(opt_.schedule);
  std::set<std::string> seen;
  for (const auto& n : names_) {
    TRANQ_CHECK(seen.insert(n).second, "trs: layer name '{}' appears twice", n);
  }
  const size_t n = names_.size();
  K_.assign(n, r0_);
  s_.assign(n, 1.0);
  U_.assign(n, opt_.talr_init);
  k_.assign(n, 0.0);
}

double TrsController::target(int64_t step) const {
  return r0_ * schedule_->factor(step);
}

void TrsController::update(int64_t step, const std::vector<double>& k) {
  TRANQ_CHECK(k.size() == names_.size(),
              "trs: expected {} transition rates (one per layer), got {}", names_.size(), k.size());
  for (size_t i = 0; i < k.size(); ++i) {
    TRANQ_CHECK(k[i] >= 0 && k[i] <= 1,
                "trs: transition rate of layer '{}' must be in [0, 1], got {}", names_[i], k[i]);
  }
  // The formulas live in kernels/trs_math.h, shared with the CPU and CUDA kernels of
  // kernels/trs_update.h, so that every backend rounds them alike.
  kernels::TrsStep p;
  p.target = target(step);  // checks step >= 0 before anything changes
  p.momentum = m_;
  p.eta = eta_;
  p.talr_init = opt_.talr_init;
  p.additive = opt_.rule == TalrRule::additive;
  p.step = step;
  for (size_t i = 0; i < k.size(); ++i) {
    kernels::trs_layer_step(k[i], p, &K_[i], &s_[i], &U_[i]);
    k_[i] = k[i];
  }
  ++updates_;
}

size_t TrsController::checked(size_t layer) const {
  TRANQ_CHECK(layer < names_.size(), "trs: layer index {} out of range (have {} layers)", layer,
              names_.size());
  return layer;
}

double TrsController::talr(size_t layer) const {
  return U_[checked(layer)];
}
double TrsController::ema(size_t layer) const {
  return K_[checked(layer)];
}
double TrsController::last_rate(size_t layer) const {
  return k_[checked(layer)];
}

NamedTensors TrsController::state_tensors() const {
  const Shape shape{static_cast<int64_t>(names_.size())};
  NamedTensors out;
  out.emplace_back("trs.K", Tensor::from_vector<double>(K_, shape));
  out.emplace_back("trs.s", Tensor::from_vector<double>(s_, shape));
  out.emplace_back("trs.U", Tensor::from_vector<double>(U_, shape));
  out.emplace_back("trs.k", Tensor::from_vector<double>(k_, shape));
  out.emplace_back("trs.updates", Tensor::from_vector<int64_t>({updates_}, {}));
  return out;
}

void TrsController::load_state(const NamedTensors& t) {
  const char* vec_names[] = {"trs.K", "trs.s", "trs.U", "trs.k"};
  const int64_t n = static_cast<int64_t>(names_.size());
  std::vector<std::vector<double>> vecs(4);
  int64_t updates = -1;
  std::vector<std::string> problems;
  std::set<std::string> found;
  for (const auto& [name, tensor] : t) {
    if (!found.insert(name).second) {
      problems.push_back(fmt::format("{}: given twice", name));
      continue;
    }
    auto it = std::find(std::begin(vec_names), std::end(vec_names), name);
    if (it != std::end(vec_names)) {
      if (tensor.dtype() != DType::f64 || tensor.dim() != 1 || tensor.numel() != n) {
        problems.push_back(fmt::format("{}: expected f64[{}] (one per layer), got {}", name, n,
                                       tensor_str(tensor)));
      } else {
        vecs[it - std::begin(vec_names)] =
            tensor.to(Device::cpu()).contiguous().to_vector<double>();
      }
    } else if (name == "trs.updates") {
      if (tensor.dtype() != DType::i64 || tensor.numel() != 1 || tensor.item() < 0) {
        problems.push_back(fmt::format("{}: expected a non-negative i64 scalar, got {}", name,
                                       tensor_str(tensor)));
      } else {
        updates = tensor.to(Device::cpu()).contiguous().data<int64_t>()[0];
      }
    } else {
      problems.push_back(fmt::format("{}: unexpected", name));
    }
  }
  for (const char* name : vec_names) {
    if (!found.count(name)) problems.push_back(fmt::format("{}: missing", name));
  }
  if (!found.count("trs.updates")) problems.push_back("trs.updates: missing");
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) msg += "\n  " + p;
    TRANQ_THROW(ValueError, "trs: cannot load state ({} layers: {}):{}", n,
                fmt::format("{}", fmt::join(names_, ", ")), msg);
  }
  K_ = std::move(vecs[0]);
  s_ = std::move(vecs[1]);
  U_ = std::move(vecs[2]);
  k_ = std::move(vecs[3]);
  updates_ = updates;
}

}  // namespace tranq::optim
