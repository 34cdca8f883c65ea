#include "optim/lr_schedule.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tranq::optim {
namespace {

constexpr double kPi = 3.14159265358979323846;

enum class Kind { constant, step, multistep, cosine, linear, onecycle };

// torch.optim.lr_scheduler._annealing_cos
double anneal_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}

class Schedule final : public LrSchedule {
 public:
  Schedule(Kind kind, LrScheduleOptions opt) : kind_(kind), o_(std::move(opt)) {
    std::sort(o_.milestones.begin(), o_.milestones.end());
  }

  double factor(int64_t step) const override {
    TRANQ_CHECK(step >= 0, "lr schedule: step must be >= 0, got {}", step);
    double w = 1.0;
    if (step < o_.warmup_steps) {
      w = o_.warmup_start_factor + (1.0 - o_.warmup_start_factor) * static_cast<double>(step) /
                                       static_cast<double>(o_.warmup_steps);
    }
    return w * main_factor(step);
  }

  std::string describe() const override {
    std::string s;
    switch (kind_) {
      case Kind::constant:
        s = "constant";
        break;
      case Kind::step:
        s = fmt::format("step(step_size={}, gamma={})", o_.step_size, o_.gamma);
        break;
      case Kind::multistep:
        s = fmt::format("multistep(milestones=[{}], gamma={})", fmt::join(o_.milestones, ", "),
                        o_.gamma);
        break;
      case Kind::cosine:
        s = fmt::format("cosine(total_steps={}, min_factor={})", o_.total_steps, o_.min_factor);
        break;
      case Kind::linear:
        s = fmt::format("linear(total_steps={}, min_factor={})", o_.total_steps, o_.min_factor);
        break;
      case Kind::onecycle:
        s = fmt::format(
            "onecycle(total_steps={}, pct_start={}, div_factor={}, final_div_factor={})",
            o_.total_steps, o_.onecycle_pct_start, o_.onecycle_div_factor,
            o_.onecycle_final_div_factor);
        break;
    }
    if (o_.warmup_steps > 0) {
      s += fmt::format(" with linear warm-up over {} steps from {}", o_.warmup_steps,
                       o_.warmup_start_factor);
    }
    return s;
  }

 private:
  double main_factor(int64_t step) const {
    const double total = static_cast<double>(o_.total_steps);
    switch (kind_) {
      case Kind::constant:
        return 1.0;
      case Kind::step:
        return std::pow(o_.gamma, static_cast<double>(step / o_.step_size));
      case Kind::multistep: {
        const auto passed = std::upper_bound(o_.milestones.begin(), o_.milestones.end(), step) -
                            o_.milestones.begin();
        return std::pow(o_.gamma, static_cast<double>(passed));
      }
      case Kind::cosine: {
        if (step >= o_.total_steps) return o_.min_factor;
        return o_.min_factor + (1.0 - o_.min_factor) *
                                   (1.0 + std::cos(kPi * static_cast<double>(step) / total)) / 2.0;
      }
      case Kind::linear: {
        if (step >= o_.total_steps) return o_.min_factor;
        return 1.0 + (o_.min_factor - 1.0) * static_cast<double>(step) / total;
      }
      case Kind::onecycle: {
        // torch.optim.lr_scheduler.OneCycleLR.get_lr with max_lr = 1, two phases.
        const double initial = 1.0 / o_.onecycle_div_factor;
        const double min_lr = initial / o_.onecycle_final_div_factor;
        const double end1 = o_.onecycle_pct_start * total - 1.0;
        const double end2 = total - 1.0;
        const double s = static_cast<double>(std::min(step, o_.total_steps - 1));
        if (s <= end1) return anneal_cos(initial, 1.0, s / end1);
        return anneal_cos(1.0, min_lr, (s - end1) / (end2 - end1));
      }
    }
    return 1.0;
  }

  Kind kind_;
  LrScheduleOptions o_;
};

}  // namespace

std::unique_ptr<LrSchedule> make_lr_schedule(const LrScheduleOptions& o) {
  static const std::pair<const char*, Kind> kinds[] = {
      {"constant", Kind::constant}, {"step", Kind::step},     {"multistep", Kind::multistep},
      {"cosine", Kind::cosine},     {"linear", Kind::linear}, {"onecycle", Kind::onecycle}};
  const auto* found = std::find_if(std::begin(kinds), std::end(kinds),
                                   [&](const auto& k) { return o.name == k.first; });
  TRANQ_CHECK(found != std::end(kinds),
              "unknown lr schedule '{}'; valid names: constant, step, multistep, cosine, linear, "
              "onecycle",
              o.name);
  const Kind kind = found->second;

  TRANQ_CHECK(o.warmup_steps >= 0, "lr schedule: warmup_steps must be >= 0, got {}",
              o.warmup_steps);
  TRANQ_CHECK(o.warmup_steps == 0 || (o.warmup_start_factor >= 0 && o.warmup_start_factor <= 1),
              "lr schedule: warmup_start_factor must be in [0, 1], got {}", o.warmup_start_factor);
  const bool needs_total = kind == Kind::cosine || kind == Kind::linear || kind == Kind::onecycle;
  TRANQ_CHECK(!needs_total || o.total_steps > 0,
              "lr schedule '{}' needs total_steps > 0 (the length of the run), got {}", o.name,
              o.total_steps);
  if (kind == Kind::step || kind == Kind::multistep) {
    TRANQ_CHECK(std::isfinite(o.gamma) && o.gamma > 0,
                "lr schedule '{}': gamma must be > 0, got {}", o.name, o.gamma);
  }
  if (kind == Kind::step) {
    TRANQ_CHECK(o.step_size > 0, "lr schedule 'step' needs step_size > 0, got {}", o.step_size);
  }
  if (kind == Kind::multistep) {
    TRANQ_CHECK(!o.milestones.empty(), "lr schedule 'multistep' needs at least one milestone");
    for (int64_t m : o.milestones) {
      TRANQ_CHECK(m >= 0, "lr schedule 'multistep': milestones must be >= 0, got {}", m);
    }
  }
  if (kind == Kind::cosine || kind == Kind::linear) {
    TRANQ_CHECK(o.min_factor >= 0 && o.min_factor <= 1,
                "lr schedule '{}': min_factor must be in [0, 1], got {}", o.name, o.min_factor);
  }
  if (kind == Kind::onecycle) {
    TRANQ_CHECK(o.onecycle_pct_start > 0 && o.onecycle_pct_start < 1,
                "lr schedule 'onecycle': pct_start must be in (0, 1), got {}",
                o.onecycle_pct_start);
    TRANQ_CHECK(
        o.onecycle_div_factor > 0 && o.onecycle_final_div_factor > 0,
        "lr schedule 'onecycle': div_factor and final_div_factor must be > 0, got {} and {}",
        o.onecycle_div_factor, o.onecycle_final_div_factor);
    // Both phases need a positive length, as in torch (which would divide by zero otherwise).
    TRANQ_CHECK(o.onecycle_pct_start * static_cast<double>(o.total_steps) > 1.0,
                "lr schedule 'onecycle': pct_start * total_steps must exceed 1 so the warm-up "
                "phase has a length (got {} * {}); use more steps or a larger pct_start",
                o.onecycle_pct_start, o.total_steps);
  }
  return std::make_unique<Schedule>(kind, o);
}

LrScheduleOptions run_schedule_options(const std::string& name, int64_t total_steps) {
  LrScheduleOptions o;
  o.name = name;
  o.total_steps = total_steps;
  o.step_size = std::max<int64_t>(1, (total_steps + 2) / 3);
  o.milestones = {total_steps / 2, total_steps * 3 / 4};
  return o;
}

}  // namespace tranq::optim
