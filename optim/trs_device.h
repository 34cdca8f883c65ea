#pragma once
// The TALR controller's state on a device (optim/trs.h runs on the host): K, s, U, k per
// quantized layer as f64 tensors on the weights' device, updated by kernels::trs_update from the
// transition counts table the passes wrote there, so a training step on a GPU needs no host
// round trip for TRS. The host TrsController stays the reference and the place that logging
// and talr()/ema() read: sync_to() copies the device state into it, which on CUDA takes five
// device-to-host copies (the bad-step flags, then K, s, U and k), each waiting for the work
// queued before it; call it only when the host needs the values (quant::QatController does on
// log steps, before checkpoints and at the end of a run).
//
// Equality: the updates equal TrsController::update bit for bit on the CPU device and on CUDA
// (one formula with explicit fused multiply-adds, kernels/trs_math.h and kernels/trs_update.h).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/trs_math.h"
#include "optim/lr_schedule.h"
#include "optim/trs.h"

namespace tranq::optim {

class TrsDeviceState {
 public:
  // The controller's options, resolved momentum, gain and current state (K, s, U, k, updates),
  // copied to `device`.
  TrsDeviceState(const TrsController& c, Device device);

  // After optimizer step `step` (0-based): one kernels::trs_update with R_t = target(step) and
  // the counts table (i64 [L, 4] on device(), rows as kernels::weight_transition_pass_into
  // writes them). No synchronisation on CUDA. A row with invalid counts (a bad scale on the
  // device) leaves its layer unchanged and is remembered for sync_to().
  void update(int64_t step, const Tensor& counts);

  // Copies K, s, U, k and the update count into c (TrsController::load_state). First
  // check_valid(): c is unchanged when it throws.
  void sync_to(TrsController& c) const;
  // ValueError when some layer's counts were invalid at some update since the construction or
  // the last load_from (a zero or non-finite weight scale seen by the CUDA pass): the message
  // names the layers and their first bad steps. One device-to-host copy (the flags).
  void check_valid() const;
  // Replaces the state by c's (e.g. after c.load_state from a checkpoint); copies in place, so
  // talr() keeps its identity.
  void load_from(const TrsController& c);

  // R_t as TrsController::target computes it.
  double target(int64_t step) const;
  // U: the TALRs for the next optimizer step, f64 [L] on device(), updated in place (a param
  // group's lr_table can hold it).
  const Tensor& talr() const { return U_; }
  const Tensor& ema() const { return K_; }
  int64_t updates() const { return updates_; }
  size_t num_layers() const { return names_.size(); }
  Device device() const { return device_; }
  // Like TrsController::state_tensors(), with the vectors as copies on device(). Does not
  // check_valid().
  NamedTensors state_tensors() const;

 private:
  std::vector<std::string> names_;
  Device device_;
  std::unique_ptr<LrSchedule> schedule_;
  double r0_ = 0.0;
  kernels::TrsStep step_;  // momentum, gain, talr_init and rule; target and step per update
  Tensor K_, s_, U_, k_, bad_step_;
  int64_t updates_ = 0;
};

}  // namespace tranq::optim
