#pragma once
// `tranq convert`: a torchvision-named full-precision state dict from any of tranq's weight
// files, for PyTorch (torchvision's model + load_state_dict(strict=True)) or --init-from.
#include <cstdint>
#include <string>

namespace tranq::app {

struct ConvertResult {
  int64_t tensors = 0;  // written
  int64_t dropped = 0;  // quantizer state, optimizer state, run state left out
  int64_t in_channels = 0, classes = 0;
};

// Reads `in` (RUNDIR/model.safetensors, a QAT run's model.safetensors, or
// RUNDIR/checkpoint.safetensors) and writes to `out` (atomically) exactly the state dict of the
// full-precision `model` with torchvision's names: a QAT model's latent weights become the
// float weights, its scales and codes are dropped. Input channels and class count come from
// the file. Throws ValueError naming what is missing when the file does not hold that model.
ConvertResult convert_weights(const std::string& model, const std::string& in,
                              const std::string& out);

}  // namespace tranq::app
