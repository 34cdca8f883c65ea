#include "layers/sequential.h"

#include <string>

namespace tranq {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> m) {
  TRANQ_CHECK(m != nullptr, "Sequential::push_back: got a null module");
  register_module(std::to_string(children().size()), std::move(m));
}

std::shared_ptr<Module> Sequential::at(size_t i) const {
  TRANQ_CHECK(i < children().size(), "Sequential: index {} out of range for {} modules", i,
              children().size());
  return children()[i].second;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, m] : children()) y = m->forward(y);
  return y;
}

}  // namespace tranq
