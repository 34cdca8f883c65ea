#pragma once
#include "apps/train_config.h"

namespace tranq::app {

// Runs (or, with resume, continues) a training run in cfg.out and returns the final test
// accuracy in [0,1]. With resume and an existing RUNDIR/config.json, the saved settings are
// used instead of cfg (except the thread count, which the caller may change knowingly).
double run_train(TrainConfig cfg, bool resume);

}  // namespace tranq::app
