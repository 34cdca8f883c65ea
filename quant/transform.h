#pragma once
// The model transform of QAT: swap Conv2d/Linear modules for QConv2d/QLinear in place.
#include <string>
#include <utility>
#include <vector>

#include "quant/qlayers.h"

namespace tranq::quant {

struct QuantizeOptions {
  QuantSpec spec;
  // The first conv and the last linear layer stay full precision when 0 (common practice);
  // with 8 they are quantized to 8-bit weights (the first conv's input, the image, is not
  // quantized; the last layer's input gets 8-bit activations). The quantized last linear gets
  // an output scale (QuantSpec::output_scale), since no BN follows it.
  int first_last_bits = 0;
};

// Replaces the layers and returns the names of the quantized ones, in model order.
std::vector<std::string> quantize_model(Module& model, const QuantizeOptions& opt);

// The quantized layers of a model, in model order.
std::vector<std::pair<std::string, QuantizedLayer*>> quantized_layers(Module& model);

// Sets every quantized layer's activation scale from one forward of `batch` (training mode,
// no gradient), as the method initialises them from the first training batch (and output
// scales to |s_w|*|s_a|, QuantizedLayer::init_output_scale) and, with
// QuantSpec::signed_act_auto, each input quantizer's act_signed flag; BN running statistics and
// other buffers are restored afterwards so calibration leaves no other trace (on a failed
// forward, none at all).
void calibrate_activation_scales(Module& model, const Tensor& batch);

}  // namespace tranq::quant
