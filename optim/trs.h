#pragma once
// Transition-rate scheduling (TRS, /work/shared/docs/trs-method.md), host logic only: a target
// transition rate R_t = R_0 * factor(t) with the shapes of optim/lr_schedule.h, and a per-layer
// controller that turns measured transition rates k_t into a transition-adaptive learning rate
// (TALR) U for each quantized layer. Knows nothing of modules or optimizers: the trainer feeds
// it the rates after every optimizer step and copies talr(i) into the layer's param group.
//
// Per layer, after measuring k_t at step t (R_t = target(t)):
//   K = m*K + (1-m)*k_t                                    (EMA, K_0 = R_0)
//   additive       (paper, Eq. 11): U = max(0, U + eta*(R_t - K))          (U_0 = talr_init)
//   multiplicative (released code): s = m*s + (1-m)*s*R_t/(K + 1e-8),  U = talr_init*s  (s_0 = 1)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "optim/lr_schedule.h"

namespace tranq::optim {

enum class TalrRule { multiplicative, additive };
// "multiplicative" | "additive"; ValueError listing both otherwise.
TalrRule parse_talr_rule(const std::string& s);
const char* talr_rule_name(TalrRule r);

struct TrsOptions {
  double target_tr = 0.0;      // R_0; if <= 0, tr_factor * sqrt(weight_bits) is used
  double tr_factor = 5e-3;     // lambda
  int weight_bits = 2;         // b_w for lambda*sqrt(b_w)
  LrScheduleOptions schedule;  // shape of R_t / R_0 (cosine to 0 by default; needs total_steps)
  TalrRule rule = TalrRule::multiplicative;
  double talr_init = 1e-3;  // U_0 (alpha of the multiplicative rule)
  // eta of the additive rule; <= 0 selects the default (1 - momentum) * talr_init / R_0, see
  // additive_gain().
  double talr_gain = 0.0;
  // m of the TR EMA and of the multiplicative rule; < 0 selects auto_momentum(total_steps).
  double momentum = -1.0;
};

// The TR momentum used when TrsOptions::momentum < 0: m = 1 - 1/tau with the controller's time
// constant tau = clamp(total_steps / 50, 10, 100) steps.
// Why: the EMA and the multiplicative rule form a loop with two lags of tau steps each; it
// settles to the target in ~8*tau steps (damping ratio 1/2), and the TALR can shrink by at most
// a factor m per step, so a cosine target that falls to 0 is followed only if tau is a small
// share of the run. tau = total/50 keeps the settling time at ~16% of the run. The cap of 100
// (m = 0.99) is the method's value for its 80K-step runs; the floor of 10 keeps the EMA of a
// small layer's per-step count (a few transitions) from being mostly noise. Without a total
// (total_steps <= 0) the method's 0.99 is used. Measured on short runs in docs/results.md.
double auto_momentum(int64_t total_steps);

// The momentum a controller with these options uses: o.momentum, or auto_momentum() of the
// schedule's total_steps when o.momentum < 0.
double resolved_momentum(const TrsOptions& o);

// R_0: target_tr when > 0, else tr_factor * sqrt(weight_bits). ValueError if not in (0, 1].
double initial_target(const TrsOptions& o);

// The eta the additive rule uses: talr_gain when > 0, else (1 - m) * talr_init / R_0 with m the
// resolved momentum.
// Why that default: it is the multiplicative rule's gain linearised at its start (s = 1,
// K = R_0): dU = talr_init*(1-m)*(R/K - 1) ~= (1-m)*talr_init/R_0 * (R - K). So both rules react
// alike to a rate error at first: a measured rate off by R_0 moves U by (1-m)*U_0 per step
// (1% of U_0 with m = 0.99), and U can change by its own size within the EMA's time constant.
// eta = U_0 (the paper's reported setting) moves U by ~U_0*R_0 ~ 1e-5 relative per step, too
// slow to follow a decaying target (see the method page).
double additive_gain(const TrsOptions& o);

class TrsController {
 public:
  // Validates the options (ValueError): R_0 in (0, 1], talr_init > 0, momentum in [0, 1) or < 0,
  // weight_bits >= 1, tr_factor > 0 when target_tr is unset, a valid schedule; layer names
  // must be unique.
  TrsController(TrsOptions opt, std::vector<std::string> layer_names);

  size_t num_layers() const { return names_.size(); }
  const std::vector<std::string>& layer_names() const { return names_; }
  const TrsOptions& options() const { return opt_; }
  double initial_target() const { return r0_; }
  double gain() const { return eta_; }  // eta of the additive rule (unused by multiplicative)
  double momentum() const { return m_; }  // the resolved m (see resolved_momentum)

  double target(int64_t step) const;  // R_t = R_0 * factor(step); step >= 0

  // Measured transition rates k_t (one per layer, each in [0, 1]) after optimizer step `step`
  // (0-based): updates each layer's K and U with R_t = target(step). ValueError (nothing
  // changed) on a wrong count or a rate outside [0, 1].
  void update(int64_t step, const std::vector<double>& k);

  double talr(size_t layer) const;       // U to use for the NEXT optimizer step
  double ema(size_t layer) const;        // K
  double last_rate(size_t layer) const;  // k_t of the last update (0 before any)
  int64_t updates() const { return updates_; }

  // Exact-resume state: "trs.K", "trs.s", "trs.U", "trs.k" (f64 [num_layers]) and
  // "trs.updates" (i64 scalar). load_state restores them (any device); ValueError naming every
  // missing, unexpected or mismatched tensor (layer count, dtype), and nothing changes then.
  NamedTensors state_tensors() const;
  void load_state(const NamedTensors& t);

 private:
  size_t checked(size_t layer) const;

  TrsOptions opt_;
  std::vector<std::string> names_;
  std::unique_ptr<LrSchedule> schedule_;
  double r0_ = 0.0;
  double eta_ = 0.0;
  double m_ = 0.99;
  std::vector<double> K_, s_, U_, k_;
  int64_t updates_ = 0;
};

}  // namespace tranq::optim
