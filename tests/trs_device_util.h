#pragma once
// Shared inputs and references of the device TRS step tests (test_trs_device.cpp,
// test_qat_device_path.cpp, test_cuda_trs_device.cpp): hand counts tables and the rates the
// host controller gets from them, transition pass inputs, multi-tensor optimizer sets, and a
// quantized resnet20 with one param group per quantized weight.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "gradcheck.h"
#include "kernels/transition_stats.h"
#include "kernels/trs_update.h"
#include "layers/functional.h"
#include "models/registry.h"
#include "optim/optimizer.h"
#include "optim/trs.h"
#include "quant/qat_controller.h"
#include "quant/transform.h"

namespace tranq::test {

using optim::TalrRule;
using optim::TrsController;
using optim::TrsOptions;

inline bool bits_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ha = a.to(Device::cpu()).contiguous(), hb = b.to(Device::cpu()).contiguous();
  return std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

inline void expect_same_state(const NamedTensors& a, const NamedTensors& b,
                              const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << what;
    EXPECT_TRUE(bits_equal(a[i].second, b[i].second)) << what << ": " << a[i].first;
  }
}

// Options with a cosine target, so R_t changes every step.
inline TrsOptions cosine_opts(TalrRule rule, double momentum, double gain = 0.0) {
  TrsOptions o;
  o.target_tr = 0.02;
  o.schedule.name = "cosine";
  o.schedule.total_steps = 60;
  o.rule = rule;
  o.talr_init = 0.05;
  o.talr_gain = gain;
  o.momentum = momentum;
  return o;
}

inline const std::vector<int64_t> kNumels = {1000, 37, 1, 0};

// A hand sequence of changed counts: steady, bursts, all and none, per layer.
inline int64_t changed_at(int64_t step, size_t layer) {
  const int64_t n = kNumels[layer];
  if (n == 0) return 0;
  if (step % 11 == 5) return n;  // every weight
  if (step % 7 == 3) return 0;
  return (step * 37 + static_cast<int64_t>(layer) * 13) % (n / 8 + 2);
}

inline Tensor counts_table(int64_t step) {
  std::vector<int64_t> v;
  for (size_t i = 0; i < kNumels.size(); ++i) {
    const int64_t c = changed_at(step, i);
    v.insert(v.end(), {kNumels[i], c, c / 2, c / 3});
  }
  return Tensor::from_vector<int64_t>(v, {static_cast<int64_t>(kNumels.size()), 4});
}

// The rates QatController hands to TrsController::update.
inline std::vector<double> host_rates(int64_t step) {
  std::vector<double> k;
  for (size_t i = 0; i < kNumels.size(); ++i)
    k.push_back(static_cast<double>(changed_at(step, i)) /
                static_cast<double>(std::max<int64_t>(kNumels[i], 1)));
  return k;
}

inline std::vector<std::string> layer_names() {
  return {"a", "b", "c", "d"};
}

inline kernels::TrsStep step_of(const TrsController& c, int64_t step) {
  kernels::TrsStep p;
  p.target = c.target(step);
  p.momentum = c.momentum();
  p.eta = c.gain();
  p.talr_init = c.options().talr_init;
  p.additive = c.options().rule == TalrRule::additive;
  p.step = step;
  return p;
}

struct State {
  Tensor K, s, U, k, bad;
  explicit State(const TrsController& c, Device d = Device::cpu()) {
    const auto t = c.state_tensors();
    K = t[0].second.to(d).clone();
    s = t[1].second.to(d).clone();
    U = t[2].second.to(d).clone();
    k = t[3].second.to(d).clone();
    bad = Tensor::zeros({static_cast<int64_t>(c.num_layers())}, DType::i64, d);
  }
  void update(const Tensor& counts, const kernels::TrsStep& p) const {
    kernels::trs_update(counts, p, K, s, U, k, bad);
  }
};

struct RuleCase {
  TalrRule rule;
  double momentum, gain;
};
inline const RuleCase kRules[] = {
    {TalrRule::multiplicative, -1.0, 0.0},
    {TalrRule::multiplicative, 0.9, 0.0},
    {TalrRule::additive, 0.9, 0.0},
    {TalrRule::additive, 0.5, 5.0}};  // big gain: U hits the clamp at 0

// ---------------------------------------------------------------------------------------------
// Transition pass inputs

struct PassInput {
  Tensor w, scale, codes, prev;
};

inline PassInput pass_input(DType dt, int64_t out, int64_t inner, uint64_t seed) {
  PassInput in;
  in.w = test::random_tensor({out, inner}, seed, -1.5, 1.5, dt);
  in.scale = test::random_tensor({out}, seed + 1, 0.5, 2.0, dt);
  in.codes = Tensor::zeros({out, inner}, DType::i8);
  in.prev = Tensor::zeros({out, inner}, DType::i8);
  return in;
}

inline PassInput clone(const PassInput& a) {
  return PassInput{a.w.clone(), a.scale.clone(), a.codes.clone(), a.prev.clone()};
}

inline void nudge(const Tensor& w, uint64_t seed) {
  const Tensor d = test::random_tensor(w.shape(), seed, -0.3, 0.3, w.dtype());
  Tensor nw = Tensor::empty_like(w);
  {
    NoGradGuard ng;
    if (w.dtype() == DType::f32) {
      auto a = w.to_vector<float>(), b = d.to_vector<float>();
      for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
      nw = Tensor::from_vector<float>(a, w.shape());
    } else {
      auto a = w.to_vector<double>(), b = d.to_vector<double>();
      for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
      nw = Tensor::from_vector<double>(a, w.shape());
    }
  }
  w.copy_(nw);
}

// ---------------------------------------------------------------------------------------------
// Multi-tensor optimizer sets and an lr table

struct MultiSet {
  std::vector<Tensor> p, g, b1, b2;
};

inline MultiSet multi_set(DType dt, uint64_t seed) {
  MultiSet m;
  const std::vector<int64_t> sizes = {5, 130, 1, 64};
  for (size_t i = 0; i < sizes.size(); ++i) {
    m.p.push_back(test::random_tensor({sizes[i]}, seed + i, -1, 1, dt));
    m.g.push_back(test::random_tensor({sizes[i]}, seed + 10 + i, -1, 1, dt));
    m.b1.push_back(Tensor::zeros({sizes[i]}, dt));
    m.b2.push_back(Tensor::zeros({sizes[i]}, dt));
  }
  return m;
}

inline MultiSet clone(const MultiSet& a) {
  MultiSet m;
  for (size_t i = 0; i < a.p.size(); ++i) {
    m.p.push_back(a.p[i].clone());
    m.g.push_back(a.g[i].clone());
    m.b1.push_back(a.b1[i].clone());
    m.b2.push_back(a.b2[i].clone());
  }
  return m;
}

inline void expect_same(const MultiSet& a, const MultiSet& b, const std::string& what) {
  for (size_t i = 0; i < a.p.size(); ++i) {
    EXPECT_TRUE(bits_equal(a.p[i], b.p[i])) << what << " param " << i;
    EXPECT_TRUE(bits_equal(a.b1[i], b.b1[i])) << what << " state " << i;
    EXPECT_TRUE(bits_equal(a.b2[i], b.b2[i])) << what << " state2 " << i;
  }
}

// Entries shared and out of order, one unused.
inline const std::vector<double> kTable = {0.3, 0.05, 1e-3, 7.0, 0.11};
inline const std::vector<int64_t> kIndex = {2, 0, 2, 4};
inline std::vector<double> table_lrs() {
  std::vector<double> l;
  for (int64_t i : kIndex) l.push_back(kTable[static_cast<size_t>(i)]);
  return l;
}

// ---------------------------------------------------------------------------------------------
// A quantized model with its optimizer and controller

using Layers = std::vector<std::pair<std::string, quant::QuantizedLayer*>>;

// A quantized resnet20 (W2A2) and an optimizer with one group per quantized weight, as
// apps/run_setup.cpp builds them.
struct Rig {
  std::shared_ptr<Module> model;
  Layers layers;
  std::vector<size_t> groups;
  std::unique_ptr<optim::Optimizer> opt;
  Tensor x, proj;

  Rig(const std::string& opt_name, Device device) {
    model = create_model("resnet20", 1, 10, 17);
    quant::QuantizeOptions o;
    o.spec.weight_bits = 2;
    o.spec.act_bits = 2;
    quant::quantize_model(*model, o);
    layers = quant::quantized_layers(*model);
    x = test::random_tensor({4, 1, 8, 8}, 18, -1, 1, DType::f32);
    quant::calibrate_activation_scales(*model, x);
    // The output shape on the CPU (the CUDA TRS tests run no forward pass on the device; the
    // step-wait test does, with cuDNN).
    proj = test::random_tensor((*model)(x).shape(), 19, -1, 1, DType::f32).to(device);
    model->to(device);
    x = x.to(device);
    std::vector<optim::ParamGroup> gs(1 + layers.size());
    std::set<const TensorImpl*> layer_weights;
    groups.resize(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      groups[i] = i + 1;
      gs[i + 1].names = {layers[i].first + ".weight"};
      gs[i + 1].params = {layers[i].second->weight()};
      layer_weights.insert(layers[i].second->weight().impl());
    }
    for (auto& g : gs) {
      g.lr = 0.01;
      g.momentum = opt_name == "sgd" ? 0.9 : 0.0;
    }
    for (auto& [n, p] : model->named_parameters()) {
      if (layer_weights.count(p.impl())) continue;
      gs[0].names.push_back(n);
      gs[0].params.push_back(p);
    }
    opt = optim::make_optimizer(opt_name, std::move(gs));
  }

  std::unique_ptr<quant::QatController> controller(TalrRule rule) const {
    TrsOptions o;
    o.target_tr = 0.05;
    o.schedule.name = "cosine";
    o.schedule.total_steps = 20;
    o.rule = rule;
    o.talr_init = 0.5;  // big, so that codes change every step
    std::vector<std::string> names;
    for (auto& [n, q] : layers) names.push_back(n);
    return std::make_unique<quant::QatController>(layers, groups,
                                                  std::make_unique<TrsController>(o, names));
  }

  void backward() {
    opt->zero_grad();
    ops::sum(ops::mul((*model)(x), proj)).backward();
  }
};

inline std::vector<std::vector<int64_t>> counts_of(const quant::QatController& q) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& l : q.last())
    out.push_back({l.counts.numel, l.counts.changed, l.counts.oscillated, l.counts.near});
  return out;
}

}  // namespace tranq::test
