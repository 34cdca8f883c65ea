#pragma once
// Module: a layer with named parameters, buffers and submodules, train/eval mode, and a state
// dict whose names follow PyTorch ("layer1.0.conv1.weight"), so weights move between the two.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tranq {

// What load_state_dict found wrong; empty when everything matched.
struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the dict
  std::vector<std::string> unexpected;  // in the dict, not in the module
  std::vector<std::string> mismatched;  // "name: expected f32[..], got f32[..]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Recursive, in registration order, names joined with '.'.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Module*>> named_modules();  // includes this module as ""
  // Parameters then buffers of each module, depth first: PyTorch's state_dict order.
  NamedTensors state_dict() const;
  // Copies values into this module's tensors (converting dtype, not shape). With strict, any
  // mismatch throws ValueError listing every missing, unexpected and wrong-shaped tensor;
  // without it, matching tensors are loaded and the report lists the rest: missing ones keep
  // their values, unexpected and wrong-shaped ones are ignored (a different classifier head).
  // A BatchNorm2d's "num_batches_tracked" absent from the dict is not missing: it is set to 0,
  // as PyTorch does for dicts without version metadata (old torchvision weights, safetensors).
  // A dict naming a tensor twice throws ValueError whatever strict says.
  LoadReport load_state_dict(const NamedTensors& dict, bool strict = true);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves parameters and buffers (keeping the handles this module holds valid), and with them
  // each defined gradient, as PyTorch does: the gradient's storage is swapped in place too, so
  // a handle from grad() taken before sees the moved values. Undefined gradients stay undefined.
  void to(Device device);
  void zero_grad();
  // Swaps the direct child `name` for m in place (same name, same position), e.g. to put a
  // quantized layer where a float one was. ValueError when there is no such child.
  void replace_child(const std::string& name, std::shared_ptr<Module> m);

 protected:
  // Returns the registered tensor; parameters get requires_grad. Names must be non-empty,
  // free of '.', and not yet used by a parameter, buffer or child of this module (state-dict
  // keys join names with '.', so anything else would be ambiguous); otherwise ValueError.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  // Same naming rules; m must not be null.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_new_name(name, "register_module");
    TRANQ_CHECK(m != nullptr, "register_module('{}'): got a null module", name);
    children_.emplace_back(name, m);
    return m;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 private:
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  // Throws ValueError unless name can name a new entry (see register_parameter).
  void check_new_name(const std::string& name, const char* what) const;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace tranq
