#pragma once
// One controller over any optimizer: after each optimizer step it counts every quantized
// layer's level transitions (one fused pass over the latent weights) and, under TRS, feeds the
// rates to the TALR controller, which sets the learning rate of the quantized-weight groups for
// the next step. SGDT / AdamT / AdamWT are SGD / Adam / AdamW plus this controller with a
// TrsController; plain QAT runs use it without one, for the same statistics.
#include <memory>
#include <string>
#include <vector>

#include "kernels/transition_stats.h"
#include "optim/optimizer.h"
#include "optim/trs.h"
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
  // Before optimizer.step(): under TRS, put each layer's TALR into its group's lr.
  void before_step(optim::Optimizer& opt) const;
  // After optimizer.step() number `step` (0-based): count transitions, update the controller.
  void after_step(int64_t step);

  const std::vector<LayerTransitions>& last() const { return last_; }
  const optim::TrsController* trs() const { return trs_.get(); }
  // Totals over all layers of the last step, weighted by layer size.
  LayerTransitions total() const;
  NamedTensors state_tensors() const;  // the TRS controller's state ("trs.*"), empty without TRS
  void load_state(const NamedTensors& t);

 private:
  std::vector<std::pair<std::string, QuantizedLayer*>> layers_;
  std::vector<size_t> groups_;
  std::unique_ptr<optim::TrsController> trs_;
  std::vector<LayerTransitions> last_;
};

}  // namespace tranq::quant
