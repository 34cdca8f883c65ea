#include "quant/transform.h"

#include <algorithm>
#include <map>

#include "core/autograd.h"

namespace tranq::quant {

std::vector<std::string> quantize_model(Module& model, const QuantizeOptions& opt) {
  auto modules = model.named_modules();
  std::map<std::string, Module*> by_name(modules.begin(), modules.end());
  std::string first_conv, last_linear;
  for (auto& [name, m] : modules) {
    if (first_conv.empty() && dynamic_cast<Conv2d*>(m)) first_conv = name;
    if (dynamic_cast<Linear*>(m)) last_linear = name;
  }
  TRANQ_CHECK(!first_conv.empty() || !last_linear.empty(),
              "quantize_model: the model has no Conv2d or Linear");
  std::vector<std::string> done;
  for (auto& [name, m] : modules) {
    auto* conv = dynamic_cast<Conv2d*>(m);
    auto* lin = dynamic_cast<Linear*>(m);
    if (!conv && !lin) continue;
    QuantSpec spec = opt.spec;
    if (name == first_conv || name == last_linear) {
      if (opt.first_last_bits == 0) continue;
      spec.weight_bits = opt.first_last_bits;
      spec.act_bits = name == first_conv ? 0 : opt.first_last_bits;
      // The last layer has no BN after it to absorb 1/(s_w*s_a).
      spec.output_scale = name == last_linear;
    }
    const size_t dot = name.rfind('.');
    const std::string parent = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string child = dot == std::string::npos ? name : name.substr(dot + 1);
    std::shared_ptr<Module> q;
    if (conv) {
      q = std::make_shared<QConv2d>(*conv, spec);
    } else {
      q = std::make_shared<QLinear>(*lin, spec);
    }
    q->train(m->is_training());
    by_name.at(parent)->replace_child(child, q);
    done.push_back(name);
  }
  return done;
}

std::vector<std::pair<std::string, QuantizedLayer*>> quantized_layers(Module& model) {
  std::vector<std::pair<std::string, QuantizedLayer*>> out;
  for (auto& [name, m] : model.named_modules())
    if (auto* q = dynamic_cast<QuantizedLayer*>(m)) out.emplace_back(name, q);
  return out;
}

void calibrate_activation_scales(Module& model, const Tensor& batch) {
  NamedTensors saved;
  for (auto& [n, t] : model.named_buffers()) saved.emplace_back(n, t.clone());
  auto layers = quantized_layers(model);
  // Calibration also re-initialises output scales from the new activation scales.
  std::vector<Tensor> saved_scales, saved_out;
  for (auto& [n, q] : layers) {
    saved_scales.push_back(q->act_scale().defined() ? q->act_scale().clone() : Tensor());
    saved_out.push_back(q->output_scale().defined() ? q->output_scale().clone() : Tensor());
  }
  // Each module's own mode (a model in training may hold frozen, eval-mode parts); named_modules
  // lists parents before children, so restoring in order leaves every module as it was.
  std::vector<std::pair<Module*, bool>> modes;
  for (auto& [n, m] : model.named_modules()) modes.emplace_back(m, m->is_training());
  // Runs on success and on failure alike, so that a forward that throws half way leaves no
  // calibration mode, mode change or running statistics behind.
  // After a successful forward the input quantizers' act_signed flags are its result and stay.
  auto restore = [&](bool keep_signs) {
    for (auto& [n, q] : layers) q->set_calibrating(false);
    for (auto& [m, on] : modes) m->train(on);
    auto buffers = model.named_buffers();
    for (size_t i = 0; i < buffers.size(); ++i) {
      const Tensor& b = buffers[i].second;
      const bool sign = std::any_of(layers.begin(), layers.end(), [&](const auto& l) {
        return l.second->act_signed_flag().defined() && l.second->act_signed_flag().same_as(b);
      });
      if (!(keep_signs && sign)) b.copy_(saved[i].second);
    }
  };
  model.train(true);
  for (auto& [n, q] : layers) q->set_calibrating(true);
  try {
    NoGradGuard no_grad;
    model.forward(batch);
  } catch (...) {
    restore(false);
    for (size_t i = 0; i < layers.size(); ++i) {
      if (saved_scales[i].defined()) layers[i].second->act_scale().copy_(saved_scales[i]);
      if (saved_out[i].defined()) layers[i].second->output_scale().copy_(saved_out[i]);
    }
    throw;
  }
  restore(true);
}

}  // namespace tranq::quant
