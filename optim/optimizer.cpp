#include "optim/optimizer.h"

#include <cmath>
#include <map>
#include <set>

namespace tranq::optim {
namespace {

// "a, b, c" with at most `limit` items, so a mismatched checkpoint gives a readable message.
std::string join_limited(const std::vector<std::string>& items, size_t limit = 8) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < limit; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > limit) s += fmt::format(", ... ({} more)", items.size() - limit);
  return s;
}

}  // namespace

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  TRANQ_CHECK(!groups_.empty(), "optimizer: got no parameter groups; pass at least one");
  std::set<std::string> names;
  std::set<const TensorImpl*> seen;
  size_t total = 0;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    TRANQ_CHECK(g.names.size() == g.params.size(),
                "optimizer: group {} has {} names for {} params; give one name per parameter", gi,
                g.names.size(), g.params.size());
    for (size_t i = 0; i < g.params.size(); ++i) {
      const Tensor& p = g.params[i];
      const std::string& n = g.names[i];
      TRANQ_CHECK(!n.empty(), "optimizer: parameter {} of group {} has an empty name", i, gi);
      TRANQ_CHECK(p.defined(), "optimizer: parameter '{}' is an undefined tensor", n);
      TRANQ_CHECK(is_floating(p.dtype()) && p.is_contiguous(),
                  "optimizer: parameter '{}' must be a contiguous f32/f64 tensor, got {}", n,
                  tensor_str(p));
      TRANQ_CHECK(names.insert(n).second, "optimizer: parameter name '{}' appears twice", n);
      TRANQ_CHECK(seen.insert(p.impl()).second,
                  "optimizer: parameter '{}' appears more than once (in one or several groups)", n);
    }
    total += g.params.size();
    g.base_lr = g.lr;
    state_.emplace_back(g.params.size());
    members_.push_back(g.params);
  }
  TRANQ_CHECK(total > 0, "optimizer: the parameter groups hold no parameters");
}

void Optimizer::check_hyperparameters() const {
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    TRANQ_CHECK(std::isfinite(g.lr) && g.lr >= 0, "{}: group {} has invalid lr {}; need lr >= 0",
                name(), gi, g.lr);
    TRANQ_CHECK(std::isfinite(g.weight_decay) && g.weight_decay >= 0,
                "{}: group {} has invalid weight_decay {}; need >= 0", name(), gi, g.weight_decay);
    if (g.lr_table.defined()) {
      const Tensor& t = g.lr_table;
      TRANQ_CHECK(t.dtype() == DType::f64 && t.dim() == 1 && t.is_contiguous() &&
                      g.lr_table_index >= 0 && g.lr_table_index < t.numel(),
                  "{}: group {} has lr_table {} and lr_table_index {}; need a contiguous f64 "
                  "vector and an index into it",
                  name(), gi, tensor_str(t), g.lr_table_index);
      for (size_t i = 0; i < g.params.size(); ++i)
        TRANQ_CHECK(g.params[i].device() == t.device(),
                    "{}: group {}: lr_table {} must be on the device of parameter '{}' ({})",
                    name(), gi, tensor_str(t), g.names[i], tensor_str(g.params[i]));
    }
    check_group(g, gi);
  }
}

void Optimizer::check_membership() const {
  bool same = groups_.size() == members_.size();
  for (size_t gi = 0; same && gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    same = g.params.size() == members_[gi].size() && g.names.size() == g.params.size();
    for (size_t i = 0; same && i < g.params.size(); ++i)
      same = g.params[i].same_as(members_[gi][i]);
  }
  TRANQ_CHECK(same,
              "{}: the parameters of the groups changed after construction; only hyperparameters "
              "may be edited through param_groups() (build a new optimizer instead)",
              name());
}

Tensor Optimizer::checked_grad(const ParamGroup& g, size_t i) const {
  const Tensor& p = g.params[i];
  Tensor grad = p.grad();
  if (!grad.defined()) return grad;
  TRANQ_CHECK(grad.shape() == p.shape() && grad.dtype() == p.dtype() && grad.device() == p.device(),
              "{}: gradient of '{}' is {}, expected {} like the parameter", name(), g.names[i],
              tensor_str(grad), tensor_str(p));
  return grad.contiguous();
}

void Optimizer::zero_grad() {
  for (auto& g : groups_) {
    for (auto& p : g.params) p.zero_grad();
  }
}

NamedTensors Optimizer::state_tensors() const {
  NamedTensors out;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    const std::vector<std::string> buffers = buffer_names(g);
    for (size_t i = 0; i < g.params.size(); ++i) {
      const ParamState& s = state_[gi][i];
      out.emplace_back(g.names[i] + ".step", Tensor::from_vector<int64_t>({s.step}, {}));
      if (s.buffers.size() != buffers.size()) continue;  // not updated yet (or settings changed)
      for (size_t b = 0; b < buffers.size(); ++b) {
        out.emplace_back(g.names[i] + "." + buffers[b], s.buffers[b].clone());
      }
    }
  }
  return out;
}

void Optimizer::load_state(const NamedTensors& tensors, int64_t steps) {
  std::map<std::string, Tensor> by_name;
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [n, t] : tensors) {
    if (!by_name.emplace(n, t).second) mismatched.push_back(n + ": given twice");
  }
  auto take = [&](const std::string& n) {
    auto it = by_name.find(n);
    if (it == by_name.end()) return Tensor();
    Tensor t = it->second;
    by_name.erase(it);
    return t;
  };
  // Validate everything first; the state changes only when all of it fits.
  std::vector<std::vector<ParamState>> next(groups_.size());
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    const std::vector<std::string> buffers = buffer_names(g);
    for (size_t i = 0; i < g.params.size(); ++i) {
      const Tensor& p = g.params[i];
      ParamState s;
      const std::string step_name = g.names[i] + ".step";
      Tensor st = take(step_name);
      if (!st.defined()) {
        missing.push_back(step_name);
      } else if (st.dtype() != DType::i64 || st.numel() != 1 || st.item() < 0) {
        mismatched.push_back(fmt::format("{}: expected a non-negative i64 scalar, got {}",
                                         step_name, tensor_str(st)));
      } else {
        s.step = st.to(Device::cpu()).data<int64_t>()[0];
      }
      for (const std::string& b : buffers) {
        const std::string bn = g.names[i] + "." + b;
        Tensor t = take(bn);
        if (!t.defined()) {
          if (s.step > 0) missing.push_back(bn);
          continue;
        }
        if (s.step == 0) {
          unexpected.push_back(bn + " (the parameter has no updates yet)");
          continue;
        }
        if (t.shape() != p.shape() || t.dtype() != p.dtype()) {
          mismatched.push_back(
              fmt::format("{}: expected {}, got {}", bn, tensor_str(p), tensor_str(t)));
          continue;
        }
        Tensor own = Tensor::empty_like(p);
        own.copy_(t.contiguous());
        s.buffers.push_back(own);
      }
      if (!s.buffers.empty() && s.buffers.size() != buffers.size()) s.buffers.clear();
      next[gi].push_back(std::move(s));
    }
  }
  for (const auto& [n, t] : by_name) unexpected.push_back(n);
  if (steps < 0) mismatched.push_back(fmt::format("optimizer steps: {} is negative", steps));
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = fmt::format("{}: optimizer state does not match the parameters", name());
    if (!missing.empty())
      msg += fmt::format("; missing ({}): {}", missing.size(), join_limited(missing));
    if (!unexpected.empty()) {
      msg += fmt::format("; unexpected ({}): {}", unexpected.size(), join_limited(unexpected));
    }
    if (!mismatched.empty()) {
      msg += fmt::format("; mismatched ({}): {}", mismatched.size(), join_limited(mismatched));
    }
    TRANQ_THROW(ValueError, "{}", msg);
  }
  state_ = std::move(next);
  steps_ = steps;
}

std::map<std::string, std::string> Optimizer::state_metadata() const {
  std::map<std::string, std::string> m{{"optimizer", name()}, {"steps", std::to_string(steps_)}};
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    m[fmt::format("group.{}.lr", gi)] = fmt::format("{}", groups_[gi].lr);
    m[fmt::format("group.{}.base_lr", gi)] = fmt::format("{}", groups_[gi].base_lr);
  }
  return m;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups) {
  if (name == "sgd") return make_sgd(std::move(groups));
  if (name == "adam") return make_adam(std::move(groups));
  if (name == "adamw") return make_adamw(std::move(groups));
  TRANQ_THROW(ValueError, "unknown optimizer '{}'; valid names: sgd, adam, adamw", name);
}

}  // namespace tranq::optim
