#pragma once
// Learning-rate schedules as pure functions of the 0-based optimizer step, so a resumed run
// gets the same lr without any scheduler state: lr = base_lr * factor(step).
//
//   constant   1
//   step       gamma^floor(step / step_size)                       (torch StepLR)
//   multistep  gamma^(number of milestones <= step)                (torch MultiStepLR)
//   cosine     min + (1 - min) * (1 + cos(pi * step / total)) / 2  (torch CosineAnnealingLR,
//              T_max = total_steps, closed form); held at min after total_steps
//   linear     1 + (min - 1) * step / total; held at min after total_steps
//   onecycle   torch OneCycleLR (anneal_strategy "cos", two phases, cycle_momentum=False:
//              momentum and Adam's beta1 are not cycled) with max_lr = base_lr:
//              from 1/div_factor up to 1 over the first pct_start of the run, then down to
//              1/(div_factor * final_div_factor) at step total_steps - 1 (held after)
//
// A warm-up (warmup_steps > 0) multiplies any of them by a linear ramp from
// warmup_start_factor at step 0 to 1 at step warmup_steps (torch LinearLR chained with the
// main schedule): all step counts, milestones included, stay absolute.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tranq::optim {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double factor(int64_t step) const = 0;  // lr = base_lr * factor(step); step >= 0
  virtual std::string describe() const = 0;       // e.g. "cosine(total_steps=1000, min_factor=0)"
};

struct LrScheduleOptions {
  std::string name = "cosine";  // constant | step | multistep | cosine | linear | onecycle
  int64_t total_steps = 0;      // whole run (needed by cosine, linear, onecycle)
  int64_t warmup_steps = 0;     // linear warm-up from warmup_start_factor to 1 (composes with all)
  double warmup_start_factor = 0.0;
  int64_t step_size = 0;            // step: multiply by gamma every step_size steps
  std::vector<int64_t> milestones;  // multistep (any order; a repeated milestone applies twice)
  double gamma = 0.1;
  double min_factor = 0.0;  // cosine/linear end value (eta_min / base_lr)
  double onecycle_pct_start = 0.3, onecycle_div_factor = 25.0,
         onecycle_final_div_factor = 1e4;  // torch OneCycleLR (cos anneal)
};

// `name` over a run of total_steps as the CLI applies it: step decays by gamma after each
// third of the run (step_size = ceil(total/3): two decays at most), multistep at 50% and 75%.
LrScheduleOptions run_schedule_options(const std::string& name, int64_t total_steps);

// ValueError for an unknown name (listing the valid ones) or out-of-range values; only the
// options the named schedule uses are checked.
std::unique_ptr<LrSchedule> make_lr_schedule(const LrScheduleOptions& opt);

}  // namespace tranq::optim
