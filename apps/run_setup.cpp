#include "apps/run_setup.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/safetensors.h"
#include "kernels/quant_math.h"
#include "layers/compute_precision.h"
#include "models/registry.h"
#include "optim/trs.h"
#include "quant/transform.h"

namespace tranq::app {

namespace {

quant::QuantizeOptions quantize_options(const nlohmann::json& m) {
  quant::QuantizeOptions q;
  q.spec.weight_bits = m.at("weight_bits");
  q.spec.act_bits = m.at("act_bits");
  q.spec.per_channel = m.at("per_channel");
  q.spec.learn_weight_scale = m.at("learn_weight_scale");
  q.spec.lsq_grad_scale = m.at("lsq_grad_scale");
  q.spec.scale_init = quant::parse_scale_init(m.at("scale_init"));
  q.spec.signed_act_auto = m.value("signed_act_auto", false);  // absent before it existed
  q.first_last_bits = m.at("first_last_bits");
  return q;
}

void load_initial_weights(Module& model, const TrainConfig& cfg) {
  if (cfg.init_from.empty()) return;
  const SafetensorsContent content = load_safetensors(cfg.init_from);
  try {
    LoadReport r = model.load_state_dict(content.tensors, cfg.strict);
    if (!r.ok())
      fmt::print(stderr, "note: {} loaded with --strict false: {}\n", cfg.init_from, r.str());
  } catch (const ValueError& e) {
    // A QAT run's weights carry quantizer tensors a full-precision model does not have.
    if (content.metadata.count(kQuantMetaKey) || content.metadata.count(kIntegerMetaKey))
      TRANQ_THROW(ValueError,
                  "{} holds quantized weights (a QAT run's or an export); --init-from takes "
                  "full-precision weights: `tranq convert --model {} --weights {} --out FP` "
                  "writes them from a QAT run ({})",
                  cfg.init_from, cfg.model, cfg.init_from, e.what());
    TRANQ_THROW(ValueError, "{}: {} (use --strict false to allow a different classifier head)",
                cfg.init_from, e.what());
  }
}

}  // namespace

RunSetup build_run(const TrainConfig& cfg, int64_t in_channels, int64_t num_classes,
                   int64_t total_steps, bool load_init_weights) {
  RunSetup run;
  run.model = create_model(cfg.model, in_channels, num_classes, cfg.seed);
  if (load_init_weights) load_initial_weights(*run.model, cfg);
  const bool trs = is_trs_optimizer(cfg.optimizer);
  TRANQ_CHECK(cfg.weight_bits > 0 || !trs,
              "--optimizer {} schedules transition rates of quantized weights: give --wbits",
              cfg.optimizer);

  std::vector<optim::ParamGroup> groups;
  auto group = [&](double lr, double momentum, double wd) {
    optim::ParamGroup g;
    g.lr = g.base_lr = lr;
    g.momentum = momentum;
    g.nesterov = cfg.nesterov && momentum > 0;
    g.weight_decay = wd;
    return g;
  };
  std::vector<size_t> layer_groups;
  std::vector<std::pair<std::string, quant::QuantizedLayer*>> layers;
  // Frozen under TRS by default (method page): otherwise weights would transition without any
  // weight update and the TR would not measure what the TALR moves.
  const bool learn_weight_scale = cfg.weight_scale == "auto" ? !trs : cfg.weight_scale == "learned";
  if (cfg.weight_bits > 0) {
    run.quant_meta = {{"weight_bits", cfg.weight_bits},
                      {"act_bits", cfg.act_bits > 0 ? cfg.act_bits : cfg.weight_bits},
                      {"per_channel", cfg.per_channel},
                      {"learn_weight_scale", learn_weight_scale},
                      {"lsq_grad_scale", cfg.lsq_grad_scale},
                      {"scale_init", cfg.scale_init},
                      {"signed_act_auto", cfg.act_sign == "auto"},
                      {"first_last_bits", cfg.first_last_bits}};
    quant::quantize_model(*run.model, quantize_options(run.quant_meta));
    layers = quant::quantized_layers(*run.model);
    if (trs) {
      // Layers at other bit widths (--first-last-bits) are full precision in the method: R_0 is
      // set for --wbits, and an 8-bit layer's rate at the same LR is far higher, so TRS would
      // all but stop them. They train with the base recipe and are not scheduled or counted.
      const kernels::QuantRange r = kernels::weight_range(cfg.weight_bits);
      layers.erase(std::remove_if(layers.begin(), layers.end(),
                                  [&](const auto& l) {
                                    const kernels::QuantRange q = l.second->weight_range();
                                    return q.lo != r.lo || q.hi != r.hi || q.g != r.g ||
                                           q.binary_sign != r.binary_sign;
                                  }),
                   layers.end());
    }
    // One group per quantized weight, so TRS can give each layer its own TALR.
    for (auto& [name, q] : layers) {
      optim::ParamGroup g = group(cfg.lr, cfg.momentum, cfg.weight_decay);
      g.names = {name + ".weight"};
      g.params = {q->weight()};
      layer_groups.push_back(groups.size());
      groups.push_back(g);
    }
  }
  // Quantizer scales: own LR, no momentum (for Adam: beta1 = 0), no weight decay. Everything
  // else: the base recipe.
  optim::ParamGroup scales = group(cfg.scale_lr, 0.0, 0.0),
                    rest = group(cfg.lr, cfg.momentum, cfg.weight_decay);
  scales.beta1 = 0.0;
  for (auto& [n, t] : run.model->named_parameters()) {
    bool in_layer_group = false;
    for (size_t i = 0; i < layers.size(); ++i)
      in_layer_group |= groups[layer_groups[i]].names[0] == n;
    if (in_layer_group) continue;
    const bool is_scale = n.size() > 6 && n.compare(n.size() - 6, 6, "_scale") == 0;
    optim::ParamGroup& g = is_scale ? scales : rest;
    g.names.push_back(n);
    g.params.push_back(t);
  }
  groups.push_back(rest);
  if (!scales.params.empty()) groups.push_back(scales);
  run.opt = optim::make_optimizer(base_optimizer(cfg.optimizer), std::move(groups));

  if (cfg.weight_bits > 0) {
    std::unique_ptr<optim::TrsController> controller;
    if (trs) {
      optim::TrsOptions o;
      o.target_tr = cfg.target_tr;
      o.tr_factor = cfg.tr_factor;
      o.weight_bits = cfg.weight_bits;
      o.schedule = optim::run_schedule_options(cfg.target_tr_schedule, total_steps);
      o.rule = optim::parse_talr_rule(cfg.talr_rule);
      o.talr_init = cfg.talr_init > 0 ? cfg.talr_init : cfg.lr;
      o.talr_gain = cfg.talr_gain;
      o.momentum = cfg.tr_momentum;
      std::vector<std::string> names;
      for (auto& [n, q] : layers) names.push_back(n);
      controller = std::make_unique<optim::TrsController>(o, names);
    }
    run.qat = std::make_unique<quant::QatController>(layers, layer_groups, std::move(controller));
  }
  // After the QAT transform, so the quantized layers get it too (they also copy it from the
  // float layers they replace).
  set_compute_precision(*run.model, parse_compute_precision(cfg.precision));
  return run;
}

std::shared_ptr<Module> model_for_weights(const std::string& model, int64_t in_channels,
                                          int64_t num_classes,
                                          const std::map<std::string, std::string>& metadata) {
  auto m = create_model(model, in_channels, num_classes, 0);
  auto it = metadata.find(kQuantMetaKey);
  if (it != metadata.end()) {
    auto j = nlohmann::json::parse(it->second, nullptr, false);
    TRANQ_CHECK_AS(FormatError, !j.is_discarded(), "corrupt '{}' metadata", kQuantMetaKey);
    quant::quantize_model(*m, quantize_options(j));
  }
  return m;
}

}  // namespace tranq::app

namespace tranq::app {

namespace {

// Input channels of the first convolution and rows of the classifier; -1 where unknown.
struct DataShapeOf {
  int64_t channels = -1, classes = -1;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The tensor of weight `name` ("conv1.weight") in a weights file: the float or latent weight,
// or an exported integer model's codes (same shape); null when absent.
const Tensor* file_weight(const SafetensorsContent& content, const std::string& name) {
  for (const auto& [n, t] : content.tensors)
    if (n == name || n == name + "_codes") return &t;
  return nullptr;
}

// What the model (made for the data set) and the weights file expect of the data: the first
// 4-D ".weight" of the model's state dict is its first convolution, the last 2-D one its
// classifier; the file's tensors of the same names are compared.
void data_shapes(const Module& model, const SafetensorsContent& content, DataShapeOf* of_model,
                 DataShapeOf* of_file) {
  std::string conv, fc;
  for (const auto& [n, t] : model.state_dict()) {
    if (!ends_with(n, ".weight")) continue;
    if (t.dim() == 4 && conv.empty()) {
      conv = n;
      of_model->channels = t.size(1);
    }
    if (t.dim() == 2) {
      fc = n;
      of_model->classes = t.size(0);
    }
  }
  const Tensor* w = conv.empty() ? nullptr : file_weight(content, conv);
  if (w && w->dim() == 4) of_file->channels = w->size(1);
  w = fc.empty() ? nullptr : file_weight(content, fc);
  if (w && w->dim() == 2) of_file->classes = w->size(0);
}

}  // namespace

void load_weights(Module& model, const SafetensorsContent& content, const std::string& path,
                  const std::string& dataset) {
  if (!dataset.empty()) {
    DataShapeOf want, got;
    data_shapes(model, content, &want, &got);
    const bool channels_differ = got.channels >= 0 && got.channels != want.channels;
    const bool classes_differ = got.classes >= 0 && got.classes != want.classes;
    if (channels_differ || classes_differ) {
      auto known = [](int64_t v) { return v >= 0 ? std::to_string(v) : std::string("?"); };
      TRANQ_THROW(ValueError,
                  "{}: the weights are for {}-channel input and {} classes; --dataset {} has {} "
                  "and {} (is --dataset right?)",
                  path, known(got.channels), known(got.classes), dataset, want.channels,
                  want.classes);
    }
  }
  const bool integer = content.metadata.count(kIntegerMetaKey) > 0;
  try {
    LoadReport r = model.load_state_dict(content.tensors, !integer);
    if (integer) {
      // Only the latent weights and their previous codes may be absent.
      std::set<std::string> allowed;
      for (auto& [name, q] : quant::quantized_layers(model)) {
        allowed.insert(name + ".weight");
        allowed.insert(name + ".weight_prev_codes");
      }
      for (const auto& m : r.missing) TRANQ_CHECK(allowed.count(m), "integer model lacks '{}'", m);
      TRANQ_CHECK(r.unexpected.empty() && r.mismatched.empty(), "unexpected tensors: {}", r.str());
      for (auto& [name, q] : quant::quantized_layers(model)) q->set_integer_mode(true);
    }
  } catch (const ValueError& e) {
    TRANQ_THROW(ValueError, "{}: {} (is --model right?)", path, e.what());
  }
}

SafetensorsContent export_integer_model(Module& model,
                                        const std::map<std::string, std::string>& metadata) {
  TRANQ_CHECK(metadata.count(kQuantMetaKey),
              "the weights were not written by a QAT run (no '{}' metadata)", kQuantMetaKey);
  // Its latent weights are gone: codes computed here would come from fresh initial weights.
  TRANQ_CHECK(!metadata.count(kIntegerMetaKey),
              "the weights are already an exported integer model; export reads the "
              "model.safetensors of a QAT run");
  std::map<std::string, Tensor> codes;
  std::set<std::string> skip;
  for (auto& [name, q] : quant::quantized_layers(model)) {
    codes[name + ".weight_codes"] = q->compute_codes();
    skip.insert(name + ".weight");
    skip.insert(name + ".weight_prev_codes");
  }
  SafetensorsContent out;
  for (auto& [n, t] : model.state_dict()) {
    if (skip.count(n)) continue;
    auto c = codes.find(n);
    out.tensors.emplace_back(n, c == codes.end() ? t : c->second);
  }
  out.metadata = {{kQuantMetaKey, metadata.at(kQuantMetaKey)}, {kIntegerMetaKey, "1"}};
  return out;
}

}  // namespace tranq::app
