#include "layers/module.h"

#include <map>
#include <set>

#include "layers/batch_norm.h"

namespace tranq {

std::string LoadReport::str() const {
  std::string s;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s += fmt::format("{}{} ({}): ", s.empty() ? "" : "; ", what, v.size());
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("wrong shape", mismatched);
  return s;
}

void Module::check_new_name(const std::string& name, const char* what) const {
  TRANQ_CHECK(!name.empty(),
              "{}: the name is empty; give each parameter, buffer and child a "
              "non-empty name",
              what);
  TRANQ_CHECK(name.find('.') == std::string::npos,
              "{}('{}'): names must not contain '.', which joins the names of nested modules in "
              "state-dict keys; use '_' instead",
              what, name);
  const char* used_by = nullptr;
  for (const auto& [n, t] : params_)
    if (n == name) used_by = "a parameter";
  for (const auto& [n, t] : buffers_)
    if (n == name) used_by = "a buffer";
  for (const auto& [n, m] : children_)
    if (n == name) used_by = "a child module";
  TRANQ_CHECK(used_by == nullptr,
              "{}('{}'): the name is already used by {} of this module; pick another name (or "
              "replace_child to swap a child)",
              what, name, used_by ? used_by : "");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name, "register_parameter");
  TRANQ_CHECK(t.defined(), "register_parameter('{}'): got an undefined tensor", name);
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "register_buffer");
  TRANQ_CHECK(t.defined(), "register_buffer('{}'): got an undefined tensor", name);
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     NamedTensors& out) const {
  if (params)
    for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  if (buffers)
    for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& [n, m] : children_) {
    for (auto& [sub, ptr] : m->named_modules())
      out.emplace_back(sub.empty() ? n : n + "." + sub, ptr);
  }
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

LoadReport Module::load_state_dict(const NamedTensors& dict, bool strict) {
  LoadReport report;
  std::map<std::string, const Tensor*> given;
  for (const auto& [n, t] : dict) {
    TRANQ_CHECK(given.emplace(n, &t).second,
                "state dict names '{}' more than once, so which value to load is ambiguous; "
                "keep one entry per name",
                n);
  }
  // PyTorch's _BatchNorm._load_from_state_dict: a dict without version metadata may predate
  // num_batches_tracked, which then loads as 0 instead of counting as missing.
  std::set<std::string> zero_if_absent;
  for (auto& [path, m] : named_modules())
    if (dynamic_cast<const BatchNorm2d*>(m))
      zero_if_absent.insert(path.empty() ? "num_batches_tracked" : path + ".num_batches_tracked");
  NamedTensors mine = state_dict();
  std::map<std::string, bool> known;
  std::vector<Tensor> to_zero;
  for (const auto& [n, t] : mine) {
    known[n] = true;
    auto it = given.find(n);
    if (it == given.end()) {
      if (zero_if_absent.count(n))
        to_zero.push_back(t);
      else
        report.missing.push_back(n);
    } else if (it->second->shape() != t.shape()) {
      report.mismatched.push_back(fmt::format("{}: expected {}, got {}", n, shape_str(t.shape()),
                                              shape_str(it->second->shape())));
    }
  }
  for (const auto& [n, t] : dict)
    if (!known.count(n)) report.unexpected.push_back(n);
  if (strict && !report.ok()) {
    TRANQ_THROW(ValueError, "state dict does not match the model: {}", report.str());
  }
  for (const auto& [n, t] : mine) {
    auto it = given.find(n);
    if (it == given.end() || it->second->shape() != t.shape()) continue;
    Tensor src = it->second->to(Device::cpu()).to(t.dtype()).to(t.device());
    t.copy_(src);
  }
  for (const Tensor& t : to_zero) t.zero_();
  return report;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

namespace {

// Swaps t's storage for a copy on device, so every handle to t sees the moved data.
void move_in_place(const Tensor& t, Device device) {
  if (t.device() == device) return;
  Tensor moved = t.to(device);
  t.impl()->storage = moved.storage();
  t.impl()->offset = moved.offset();
  t.impl()->strides = moved.strides();
}

}  // namespace

void Module::to(Device device) {
  auto move = [&](NamedTensors& v) {
    for (auto& [n, t] : v) {
      move_in_place(t, device);
      // The gradient goes along (torch's Module._apply), or an optimizer step after to()
      // would silently see none.
      if (t.grad().defined()) move_in_place(t.grad(), device);
    }
  };
  move(params_);
  move(buffers_);
  for (auto& [n, m] : children_) m->to(device);
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> m) {
  TRANQ_CHECK(m != nullptr, "replace_child('{}'): null module", name);
  for (auto& [n, child] : children_) {
    if (n == name) {
      child = std::move(m);
      return;
    }
  }
  TRANQ_THROW(ValueError, "replace_child: no child named '{}'", name);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

}  // namespace tranq
