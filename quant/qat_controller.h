#pragma once
// One controller over any optimizer: after each optimizer step it counts every quantized
// layer's level transitions (one fused pass over the latent weights that also writes the
// quantized weight the next forward uses) and, under TRS, feeds the
// rates to the TALR controller, which sets the learning rate of the quantized-weight groups for
// the next step. SGDT / AdamT / AdamWT are SGD / Adam / AdamW plus this controller with a
// TrsController; plain QAT runs use it without one, for the same statistics.
//
// Two paths, chosen from where the quantized weights are:
// - host path (CPU weights): after_step counts each layer, feeds the rates to the host
//   TrsController, and before_step writes each TALR into its group's lr. last(), total() and
//   trs() are current after every step.
// - device path (every quantized weight on one CUDA device): after_step writes every layer's
//   counts into a device table (kernels::quantize_weight_and_count_into) and, under TRS,
//   updates an optim::TrsDeviceState from it (kernels::trs_update), and before_step points the
//   quantized groups' ParamGroup::lr_table at the device TALRs, so a step has no host round
//   trip, with or without TRS. The tables of the steps since the last sync are kept on the
//   device; last(), total() and trs() are brought up to date only by sync_for_logging(), which
//   copies the pending tables and then, under TRS, the TRS state to the host (six
//   device-to-host copies, five when no step is pending; one without TRS; see
//   sync_for_logging). The trainer syncs on log steps, before every checkpoint, at the end of
//   each epoch and at the end of the run (apps/trainer.cpp). A zero or non-finite weight scale is
//   found on the device, leaves that layer's codes and TALR unchanged, and is raised (ValueError
//   naming the layer and step) by the next sync_for_logging() or state_tensors(), whichever comes
//   first: state_tensors() reads the device state directly but refuses a state with a bad step.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/transition_stats.h"
#include "optim/optimizer.h"
#include "optim/trs.h"
#include "optim/trs_device.h"
#include "quant/qlayers.h"

namespace tranq::quant {

struct LayerTransitions {
  std::string name;
  kernels::TransitionCounts counts;
  double tr = 0, osc = 0, near = 0;  // transition rate, oscillating share, near-boundary share
};

class QatController {
 public:
  // layer_groups[i]: index of the optimizer param group holding exactly the weight of layer i
  // (its lr is driven by the TALR under TRS). trs may be null (statistics only).
  QatController(std::vector<std::pair<std::string, QuantizedLayer*>> layers,
                std::vector<size_t> layer_groups, std::unique_ptr<optim::TrsController> trs);

  // Codes of the current latent weights, before the first step of a new QAT run.
  void initialise();
  // Before optimizer.step(): under TRS, put each layer's TALR into its group's lr (device path:
  // set its group's lr_table / lr_table_index to the device TALRs instead).
  void before_step(optim::Optimizer& opt);
  // After optimizer.step() number `step` (0-based): count transitions, update the controller.
  void after_step(int64_t step);

  // True when after_step takes the device path, i.e. leaves last(), total() and trs() to
  // sync_for_logging().
  bool deferred() const { return device_path(); }
  // Device path: fetches the counts tables of every step since the previous call (one
  // device-to-host copy, none when no step is pending) and, for each of those steps in order,
  // sets last() to that step's rates and calls each_step(*this) (so a metrics window can add
  // every step exactly once, as it does after each after_step on the host path); then copies
  // the device TRS state into trs() (optim::TrsDeviceState::sync_to: five more copies). Each
  // copy waits for the work queued on the device. ValueError naming the layer and step, before
  // any each_step call and with trs() unchanged, when a weight scale was zero or non-finite;
  // the steps stay pending, so the next call raises again. Host path: nothing to do (each_step
  // is not called; last() is always current there).
  void sync_for_logging(const std::function<void(const QatController&)>& each_step = {});

  // For tests: take the device path on the CPU too (weights on one device). Its results equal
  // the host path's bit for bit there.
  void set_force_device_path(bool on) { force_device_path_ = on; }
  // On by default: the counting pass after each step also writes every layer's quantized
  // weight for the next forward (QuantizedLayer::set_prepared_weight), one read of the latent
  // weights for both. Off: it only counts, and the forward quantizes again (same results; for
  // tests and benchmarks).
  void set_prepare_weights(bool on) { prepare_weights_ = on; }

  // Host path: the last step's. Device path: the last synced step's (see sync_for_logging).
  const std::vector<LayerTransitions>& last() const { return last_; }
  const optim::TrsController* trs() const { return trs_.get(); }
  // Totals over all layers of the last step, weighted by layer size.
  LayerTransitions total() const;
  // The TRS controller's state ("trs.*"; on the device path copies of the device state, read
  // without a sync), empty without TRS. Device path: ValueError naming the layer and step when
  // a pending step or an earlier one reported a zero or non-finite weight scale, so that no
  // checkpoint holds a state frozen by it (two device-to-host copies for that check).
  NamedTensors state_tensors() const;
  // Device path: the counts tables of the steps not yet synced, i64 [steps, layers, 4] on the
  // weights' device (a view: writes reach the pending history); undefined when none is pending
  // or on the host path. For inspection and tests.
  Tensor pending_counts() const;
  // Also drops the layers' prepared weights (the weights are being restored).
  void load_state(const NamedTensors& t);

 private:
  std::vector<std::pair<std::string, QuantizedLayer*>> layers_;
  std::vector<size_t> groups_;
  std::unique_ptr<optim::TrsController> trs_;
  std::vector<LayerTransitions> last_;

  // The device path (see the top of the file).
  bool device_path() const;
  // Creates the device state when the device path is taken, and leaves it (state synced back
  // into trs_) when the weights moved elsewhere.
  void settle();
  void device_after_step(int64_t step);
  // pending_counts() on the host; ValueError naming the layer and step of a bad-scale report.
  std::vector<int64_t> fetch_pending_counts() const;
  // A fresh buffer for layer i's quantized weight, or undefined when not preparing.
  Tensor prepared_buffer(size_t i) const;
  bool force_device_path_ = false;
  bool prepare_weights_ = true;
  bool on_device_ = false;  // the device path is taken (on device_)
  Device device_;
  std::unique_ptr<optim::TrsDeviceState> dev_;  // under TRS on the device path
  Tensor history_;                      // i64 [capacity, L, 4] counts tables on the device
  std::vector<int64_t> pending_steps_;  // the steps of history_'s first rows, not yet synced
};

}  // namespace tranq::quant
