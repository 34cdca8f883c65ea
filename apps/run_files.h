#pragma once
// The files of a training run directory and the checkpoint that makes resume exact.
//   RUNDIR/config.json             the run's settings (written once, atomically)
//   RUNDIR/checkpoint.safetensors  model ("model/<name>"), optimizer ("optim/<name>") and
//                                  controller ("extra/<name>")
//                                  tensors; metadata: position in the run, RNG states, epoch
//                                  accumulators (written atomically at epoch ends and every
//                                  --checkpoint-every steps)
//   RUNDIR/model.safetensors       weights with PyTorch names (written at epoch ends)
//   RUNDIR/metrics.jsonl           one JSON object per logged step and per epoch
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/module.h"
#include "optim/optimizer.h"

namespace tranq::app {

std::string config_path(const std::string& run_dir);
std::string checkpoint_path(const std::string& run_dir);
std::string model_path(const std::string& run_dir);
std::string metrics_path(const std::string& run_dir);

// Where the run stands: `epoch` is the epoch in progress and `batch` the next batch to run.
struct RunPosition {
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t batch = 0;
  // Sums over the batches of the epoch so far (so epoch metrics survive a resume).
  double epoch_loss_sum = 0;
  int64_t epoch_correct = 0;
  int64_t epoch_seen = 0;
};

// Saves model, optimizer and position atomically; `extra` goes into the metadata as JSON.
// extra_tensors (e.g. the TRS controller's state) are stored under "extra/<name>".
void save_checkpoint(const std::string& run_dir, const Module& model, const optim::Optimizer& opt,
                     const RunPosition& pos, const nlohmann::json& extra,
                     const NamedTensors& extra_tensors);
// Loads into model and optimizer; returns the position and fills extra. FormatError when the
// file is not a tranq checkpoint of this model and optimizer. check_extra, when given, sees
// extra before any tensor is loaded, so that it can refuse the checkpoint with a better reason
// than the shape mismatch that would follow (e.g. other training data).
RunPosition load_checkpoint(const std::string& run_dir, Module& model, optim::Optimizer& opt,
                            nlohmann::json& extra, NamedTensors& extra_tensors,
                            const std::function<void(const nlohmann::json&)>& check_extra = {});

// Keeps the lines of metrics.jsonl that describe steps up to `step` (drops what a killed run
// wrote after its last checkpoint, including a torn last line).
void truncate_metrics(const std::string& run_dir, int64_t step);

}  // namespace tranq::app
