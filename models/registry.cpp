#include "models/registry.h"

#include "models/mobilenet_v2.h"
#include "models/resnet.h"

namespace tranq {

std::vector<std::string> model_names() {
  return {"resnet20", "resnet18", "resnet34", "mobilenet_v2"};
}

std::shared_ptr<Module> create_model(const std::string& name, int64_t in_channels,
                                     int64_t num_classes, uint64_t seed) {
  if (name == "resnet20") return models::resnet20(in_channels, num_classes, seed);
  if (name == "resnet18") return models::resnet18(in_channels, num_classes, seed);
  if (name == "resnet34") return models::resnet34(in_channels, num_classes, seed);
  if (name == "mobilenet_v2") return models::mobilenet_v2(in_channels, num_classes, seed);
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  TRANQ_THROW(ValueError, "unknown model '{}'; known: {}", name, known);
}

}  // namespace tranq
