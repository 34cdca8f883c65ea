// Checks of apps/run_setup.cpp: build_run's parameter groups, export_integer_model and load_weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "apps/run_setup.h"
#include "apps/train_config.h"
#include "core/autograd.h"
#include "core/safetensors.h"
#include "gradcheck.h"
#include "quant/transform.h"

using namespace tranq;

namespace {

using test::bitwise_equal;

app::TrainConfig qat_config(const std::string& optimizer) {
  app::TrainConfig c;
  c.model = "resnet20";
  c.optimizer = optimizer;
  c.weight_bits = 2;
  c.lr = 0.05;
  c.momentum = 0.9;
  c.weight_decay = 1e-4;
  c.scale_lr = 0.01;
  return c;
}

TEST(BuildRun, WeightScaleOverride) {
  // auto: learned by plain optimizers, frozen under TRS; learned/frozen force it either way,
  // and a frozen scale is a buffer (not in any group), a learned one sits in the scales group.
  struct Case {
    std::string optimizer, weight_scale;
    bool learned;
  };
  for (const Case& c : {Case{"sgd", "auto", true}, Case{"sgdt", "auto", false},
                        Case{"sgd", "frozen", false}, Case{"sgdt", "learned", true}}) {
    SCOPED_TRACE(c.optimizer + " " + c.weight_scale);
    auto cfg = qat_config(c.optimizer);
    cfg.weight_scale = c.weight_scale;
    app::RunSetup run = app::build_run(cfg, 1, 10, 100);
    auto layers = quant::quantized_layers(*run.model);
    for (auto& [name, q] : layers) EXPECT_EQ(q->spec().learn_weight_scale, c.learned) << name;
    EXPECT_EQ(run.quant_meta.at("learn_weight_scale"), c.learned);
    size_t weight_scale_params = 0;
    for (auto& g : run.opt->param_groups())
      for (auto& n : g.names) weight_scale_params += n.find("weight_scale") != std::string::npos;
    EXPECT_EQ(weight_scale_params, c.learned ? layers.size() : 0u);
  }
}

TEST(BuildRun, QatGroups) {
  for (std::string optname : {"sgd", "sgdt", "adamt"}) {
    SCOPED_TRACE(optname);
    auto cfg = qat_config(optname);
    const bool trs = optname != "sgd";
    app::RunSetup run = app::build_run(cfg, 1, 10, 100);
    ASSERT_TRUE(run.qat);
    EXPECT_EQ(run.qat->trs() != nullptr, trs);
    auto layers = quant::quantized_layers(*run.model);
    ASSERT_EQ(layers.size(), 20u);
    auto& groups = run.opt->param_groups();
    ASSERT_EQ(groups.size(), layers.size() + 2);
    std::set<std::string> seen;
    for (size_t i = 0; i < layers.size(); ++i) {
      EXPECT_EQ(groups[i].names, std::vector<std::string>{layers[i].first + ".weight"});
      ASSERT_EQ(groups[i].params.size(), 1u);
      EXPECT_TRUE(groups[i].params[0].same_as(layers[i].second->weight()));
      EXPECT_EQ(groups[i].lr, cfg.lr);
      EXPECT_EQ(groups[i].momentum, cfg.momentum);
      EXPECT_EQ(groups[i].weight_decay, cfg.weight_decay);
      EXPECT_EQ(layers[i].second->spec().learn_weight_scale, !trs);
    }
    const auto& rest = groups[layers.size()];
    const auto& scales = groups[layers.size() + 1];
    EXPECT_EQ(rest.lr, cfg.lr);
    EXPECT_EQ(rest.weight_decay, cfg.weight_decay);
    EXPECT_EQ(scales.lr, cfg.scale_lr);
    EXPECT_EQ(scales.momentum, 0.0);
    EXPECT_EQ(scales.beta1, 0.0);  // no momentum under Adam either
    EXPECT_EQ(rest.beta1, 0.9);
    EXPECT_FALSE(scales.nesterov);
    EXPECT_EQ(scales.weight_decay, 0.0);
    for (auto& n : scales.names) {
      EXPECT_TRUE(n.find("act_scale") != std::string::npos || (!trs && n.find("weight_scale") != std::string::npos)) << n;
    }
    EXPECT_EQ(scales.names.size(), trs ? 20u : 40u);
    for (auto& n : rest.names) EXPECT_EQ(n.find("_scale"), std::string::npos) << n;
    for (auto& g : groups)
      for (auto& n : g.names) EXPECT_TRUE(seen.insert(n).second) << n << " twice";
    std::set<std::string> all;
    for (auto& [n, t] : run.model->named_parameters()) all.insert(n);
    EXPECT_EQ(seen, all);
    if (trs) {
      for (auto& g : groups) g.lr = 0.777;
      run.qat->before_step(*run.opt);
      for (size_t i = 0; i < layers.size(); ++i) EXPECT_EQ(groups[i].lr, cfg.lr);  // talr_init 0 -> --lr
      EXPECT_EQ(rest.lr, 0.777);
      EXPECT_EQ(run.qat->trs()->initial_target(), 5e-3 * std::sqrt(2.0));
    }
  }
}

// --first-last-bits layers are not scheduled under TRS (the method keeps them in full
// precision; R_0 is set for --wbits): they train with the base recipe and plain QAT still
// counts their transitions.
TEST(BuildRun, FirstLastBitsLayersAreNotScheduledUnderTrs) {
  for (std::string optname : {"sgd", "sgdt"}) {
    SCOPED_TRACE(optname);
    auto cfg = qat_config(optname);
    cfg.first_last_bits = 8;
    app::RunSetup run = app::build_run(cfg, 1, 10, 100);
    ASSERT_TRUE(run.qat);
    auto layers = quant::quantized_layers(*run.model);
    ASSERT_EQ(layers.size(), 22u);  // conv1 and fc too
    std::vector<std::string> counted;
    for (const auto& l : run.qat->last()) counted.push_back(l.name);
    const bool trs = optname == "sgdt";
    EXPECT_EQ(counted.size(), trs ? 20u : 22u);
    const bool has_first = std::find(counted.begin(), counted.end(), "conv1") != counted.end();
    EXPECT_EQ(has_first, !trs);
    if (trs) {
      EXPECT_EQ(run.qat->trs()->layer_names(), counted);
      // conv1.weight and fc.weight sit in the base-recipe group, not a TALR group.
      auto& groups = run.opt->param_groups();
      const auto& rest = groups[groups.size() - 2];
      EXPECT_NE(std::find(rest.names.begin(), rest.names.end(), "conv1.weight"), rest.names.end());
      EXPECT_NE(std::find(rest.names.begin(), rest.names.end(), "fc.weight"), rest.names.end());
    }
  }
}

TEST(BuildRun, FullPrecision) {
  app::TrainConfig cfg;
  cfg.model = "resnet20";
  app::RunSetup run = app::build_run(cfg, 1, 10, 100);
  EXPECT_FALSE(run.qat);
  EXPECT_TRUE(quant::quantized_layers(*run.model).empty());
  ASSERT_EQ(run.opt->param_groups().size(), 1u);
  EXPECT_EQ(run.opt->param_groups()[0].names.size(), run.model->named_parameters().size());
}

TEST(Export, IntegerModelRoundTrip) {
  for (bool pc : {false, true}) {
    auto cfg = qat_config("sgd");
    cfg.per_channel = pc;
    cfg.first_last_bits = pc ? 8 : 0;
    app::RunSetup run = app::build_run(cfg, 1, 10, 100);
    Tensor x = test::random_tensor({2, 1, 8, 8}, 1, -1, 1, DType::f32);
    quant::calibrate_activation_scales(*run.model, x);
    run.qat->initialise();
    // One real step so that latent weights and learnable scales move.
    run.opt->zero_grad();
    Tensor y = (*run.model)(x);
    ops::sum(ops::mul(y, test::random_tensor(y.shape(), 2, -1, 1, DType::f32))).backward();
    for (auto& g : run.opt->param_groups()) g.lr = 0.3;
    run.opt->step();
    run.qat->after_step(0);

    std::map<std::string, std::string> meta{{app::kQuantMetaKey, run.quant_meta.dump()}};
    SafetensorsContent out = app::export_integer_model(*run.model, meta);
    EXPECT_EQ(out.metadata.count(app::kIntegerMetaKey), 1u);
    std::map<std::string, Tensor> by_name(out.tensors.begin(), out.tensors.end());
    for (auto& [n, q] : quant::quantized_layers(*run.model)) {
      EXPECT_EQ(by_name.count(n + ".weight"), 0u) << n;
      EXPECT_EQ(by_name.count(n + ".weight_prev_codes"), 0u) << n;
      ASSERT_EQ(by_name.count(n + ".weight_codes"), 1u) << n;
      EXPECT_TRUE(bitwise_equal(by_name.at(n + ".weight_codes"), q->compute_codes())) << n;
      EXPECT_TRUE(bitwise_equal(by_name.at(n + ".weight_codes"), q->codes())) << n;  // the last count
    }
    const std::string path = (std::filesystem::temp_directory_path() / "qat_scratch_int.safetensors").string();
    save_safetensors(path, out.tensors, out.metadata);
    SafetensorsContent in = load_safetensors(path);
    auto fresh = app::model_for_weights("resnet20", 1, 10, in.metadata);
    app::load_weights(*fresh, in, path);
    run.model->eval();
    fresh->eval();
    Tensor b = test::random_tensor({3, 1, 8, 8}, 3, -1.5, 1.5, DType::f32);
    EXPECT_TRUE(bitwise_equal((*fresh)(b), (*run.model)(b)));

    // A file without a required tensor names it.
    SafetensorsContent broken = in;
    const std::string victim = quant::quantized_layers(*run.model)[3].first + ".weight_codes";
    broken.tensors.erase(std::remove_if(broken.tensors.begin(), broken.tensors.end(),
                                        [&](auto& p) { return p.first == victim; }),
                         broken.tensors.end());
    auto fresh2 = app::model_for_weights("resnet20", 1, 10, in.metadata);
    try {
      app::load_weights(*fresh2, broken, path);
      ADD_FAILURE() << "no error";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(victim), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    for (const std::string& v : {std::string("bn1.running_mean"), std::string("layer1.0.conv1.act_scale"),
                                 std::string("layer1.0.conv1.weight_scale")}) {
      SafetensorsContent b2 = in;
      b2.tensors.erase(std::remove_if(b2.tensors.begin(), b2.tensors.end(), [&](auto& p) { return p.first == v; }),
                       b2.tensors.end());
      auto f3 = app::model_for_weights("resnet20", 1, 10, in.metadata);
      try {
        app::load_weights(*f3, b2, path);
        ADD_FAILURE() << "no error for missing " << v;
      } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find(v), std::string::npos) << e.what();
      }
    }
    std::filesystem::remove(path);
  }
}

}  // namespace

TEST(TrainConfigJson, RoundTripAndOlderRuns) {
  app::TrainConfig c = qat_config("sgdt");
  c.weight_scale = "learned";
  c.precision = "bf16";
  c.device = "cuda:1";
  c.image_size = 64;
  c.tr_momentum = 0.95;
  const nlohmann::json j = app::to_json(c);
  const app::TrainConfig back = app::config_from_json(j);
  EXPECT_EQ(app::to_json(back), j);
  EXPECT_EQ(back.weight_scale, "learned");
  EXPECT_EQ(back.precision, "bf16");

  // Runs made before these settings existed resume with the defaults they ran with.
  nlohmann::json old = j;
  for (const char* k : {"weight_scale", "precision", "device", "image_size"}) old.erase(k);
  const app::TrainConfig o = app::config_from_json(old);
  EXPECT_EQ(o.weight_scale, "auto");
  EXPECT_EQ(o.precision, "fp32");
  EXPECT_EQ(o.device, "cpu");
  EXPECT_EQ(o.image_size, 0);
  EXPECT_EQ(o.tr_momentum, 0.95);

  // Anything else missing or mistyped is a FormatError.
  nlohmann::json broken = j;
  broken.erase("lr");
  EXPECT_THROW(app::config_from_json(broken), FormatError);
  broken = j;
  broken["epochs"] = "ten";
  EXPECT_THROW(app::config_from_json(broken), FormatError);
}
