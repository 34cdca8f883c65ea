#include "models/torchvision_init.h"

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/init.h"
#include "layers/linear.h"

namespace tranq::models {

void torchvision_init(Module& model, uint64_t seed, LinearInit linear_init) {
  for (auto& [name, m] : model.named_modules()) {
    Rng rng(seed, init::stream_id(name));
    if (auto* conv = dynamic_cast<Conv2d*>(m)) {
      init::kaiming_normal_(conv->weight(), rng, 0.0, init::FanMode::fan_out);
      if (conv->bias().defined()) init::constant_(conv->bias(), 0.0);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      init::constant_(bn->weight(), 1.0);
      init::constant_(bn->bias(), 0.0);
    } else if (auto* fc = dynamic_cast<Linear*>(m)) {
      if (linear_init == LinearInit::pytorch_default) {
        fc->reset_parameters(rng);
      } else {
        init::normal_(fc->weight(), 0.0, 0.01, rng);
        if (fc->bias().defined()) init::constant_(fc->bias(), 0.0);
      }
    }
  }
}

}  // namespace tranq::models
