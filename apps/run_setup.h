#pragma once
// Builds what a run trains: the model (full precision or transformed for QAT), the optimizer's
// parameter groups and, for QAT, the transition controller (with TRS for sgdt/adamt/adamwt).
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/train_config.h"
#include "core/safetensors.h"
#include "layers/module.h"
#include "optim/optimizer.h"
#include "quant/qat_controller.h"

namespace tranq::app {

struct RunSetup {
  std::shared_ptr<Module> model;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<quant::QatController> qat;  // null for full-precision runs
  nlohmann::json quant_meta;                  // null for full-precision runs
};

// load_init_weights: read cfg.init_from (a resumed run takes its weights from the checkpoint).
RunSetup build_run(const TrainConfig& cfg, int64_t in_channels, int64_t num_classes,
                   int64_t total_steps, bool load_init_weights = true);

// Metadata key under which model files record how the model was quantized.
constexpr const char* kQuantMetaKey = "tranq.quant";

// The model a weights file belongs to: quantized like the run that wrote it when its metadata
// says so. The weights are not loaded.
std::shared_ptr<Module> model_for_weights(const std::string& model, int64_t in_channels,
                                          int64_t num_classes,
                                          const std::map<std::string, std::string>& metadata);

// Metadata key of exported integer models (codes instead of latent weights).
constexpr const char* kIntegerMetaKey = "tranq.integer";

// Loads a weights file into the model from model_for_weights: float or QAT weights strictly;
// an exported integer model's codes, with its quantized layers switched to integer mode.
// ValueError naming the path on any mismatch. dataset: the --dataset the model was made for;
// when given and the weights' first convolution takes other input channels, or their
// classifier (last linear layer) has other rows, than the model's, the error blames it: "the
// weights are for C-channel input and K classes; --dataset D has C' and K'".
void load_weights(Module& model, const SafetensorsContent& content, const std::string& path,
                  const std::string& dataset = "");

// The integer model of QAT weights: per quantized layer its int8 codes (computed afresh from
// the latent weights, equal to the last fake-quant codes) and scales, plus every float tensor
// that is not a latent quantized weight.
SafetensorsContent export_integer_model(Module& model,
                                        const std::map<std::string, std::string>& metadata);

}  // namespace tranq::app
