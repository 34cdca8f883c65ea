#pragma once
// torch.nn.Sequential: children named "0", "1", ... applied in order. forward() reads each
// child through the registered pointer, so a child swapped in the registry (quantization) is
// the one that runs.
#include <cstddef>
#include <memory>
#include <vector>

#include "layers/module.h"

namespace tranq {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);

  // Appends m under the name of its index.
  void push_back(std::shared_ptr<Module> m);
  size_t size() const { return children().size(); }
  // The i-th child as registered now; throws ValueError when out of range.
  std::shared_ptr<Module> at(size_t i) const;
  std::shared_ptr<Module> operator[](size_t i) const { return at(i); }

  Tensor forward(const Tensor& x) override;
};

}  // namespace tranq
