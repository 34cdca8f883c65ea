#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

namespace tranq {
namespace {

thread_local bool g_grad_enabled = true;

void accumulate_cpu(const Tensor& dst, const Tensor& src) {
  Tensor s = src.contiguous();
  TRANQ_CHECK(dst.is_contiguous(), "gradient buffers are contiguous");
  const int64_t n = dst.numel();
  if (dst.dtype() == DType::f32) {
    float* d = dst.data<float>();
    const float* p = s.data<float>();
    for (int64_t i = 0; i < n; ++i) d[i] += p[i];
  } else {
    check_dtype(dst, DType::f64, "accumulate_grad", "dst");
    double* d = dst.data<double>();
    const double* p = s.data<double>();
    for (int64_t i = 0; i < n; ++i) d[i] += p[i];
  }
}

AccumulateFn& accumulator(DeviceType t) {
  static AccumulateFn fns[2] = {&accumulate_cpu, nullptr};
  return fns[static_cast<int>(t)];
}

}  // namespace

void register_grad_accumulator(DeviceType type, AccumulateFn fn) {
  accumulator(type) = fn;
}

void accumulate_grad(const Tensor& dst, const Tensor& src) {
  check_same_shape(dst, src, "accumulate_grad");
  TRANQ_CHECK(dst.dtype() == src.dtype() && dst.device() == src.device(),
              "accumulate_grad: {} vs {}", tensor_str(dst), tensor_str(src));
  AccumulateFn fn = accumulator(dst.device().type);
  TRANQ_CHECK_AS(DeviceError, fn != nullptr, "no gradient accumulator for {}", dst.device().str());
  fn(dst, src);
}

bool grad_enabled() {
  return g_grad_enabled;
}
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs,
              std::vector<Tensor> saved, BackwardFn backward) {
  if (!needs_grad(inputs)) return output;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  for (Tensor& t : saved) {
    if (!t.defined()) continue;
    node->saved_versions.push_back(t.version());
    node->saved.push_back(std::move(t));
  }
  node->backward = std::move(backward);
  output.set_grad_fn(std::move(node));
  return output;
}

namespace {

// True when memory written through t could be seen through another tensor: a second handle to
// the same impl (add's backward returns {g, g}), or another impl on the same storage (a view,
// e.g. reshape's backward returns g.reshape(...)). The engine's own handles count too, so it
// drops them as soon as it is done with them.
bool shared(const Tensor& t) {
  return t.use_count() > 1 || t.storage().use_count() > 1;
}

// True when the engine may add into t in place.
bool writable(const Tensor& t) {
  return t.is_contiguous() && !shared(t);
}

// Adds g into an interior node's pending gradient. Slots take closures' results as they are, so
// a slot may alias other slots, the caller's root gradient or a closure's saved tensors; it is
// copied before the first write into it only when it does (closures never write into the
// gradient they are given, so reading an alias is safe). A pass that writes into no alias makes
// no copies.
void add_into_slot(Tensor& slot, Tensor g) {
  if (!slot.defined()) {
    slot = std::move(g);
    return;
  }
  if (!writable(slot)) slot = slot.clone();
  accumulate_grad(slot, g);
}

// Adds g into a leaf's .grad. A leaf's gradient outlives the pass and belongs to the user
// (optimizers and clipping write it in place), so the first one stored must own its memory; after
// that it is added into in place, so handles to grad() see the sum.
void add_into_leaf(const Tensor& leaf, Tensor g) {
  Tensor current = leaf.grad();
  if (!current.defined()) {
    leaf.set_grad(writable(g) ? std::move(g) : g.clone());
  } else if (current.is_contiguous()) {
    accumulate_grad(current, g);
  } else {  // set by hand as a strided view: the sum goes to a fresh contiguous tensor
    current = current.clone();
    accumulate_grad(current, g);
    leaf.set_grad(current);
  }
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_in) {
  TRANQ_CHECK(root.requires_grad(), "backward(): tensor {} does not require grad",
              tensor_str(root));
  // grad_in stays the caller's: nothing below writes into it (it is shared with the caller's
  // handle, so every write goes to a copy).
  Tensor grad = grad_in;
  if (!grad.defined()) {
    TRANQ_CHECK(root.numel() == 1, "backward(): a gradient is needed for non-scalar {}",
                tensor_str(root));
    grad = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  check_same_shape(root, grad, "backward");
  TRANQ_CHECK(grad.dtype() == root.dtype() && grad.device() == root.device(),
              "backward(): gradient {} does not match the tensor {}", tensor_str(grad),
              tensor_str(root));
  if (!root.grad_fn()) {  // a leaf
    add_into_leaf(root, std::move(grad));
    return;
  }

  // Topological order by iterative DFS (post-order), so deep graphs do not overflow the stack.
  // `order` owns the nodes: clearing a node's inputs below would otherwise free its children.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root.grad_fn(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      std::shared_ptr<Node> child = in.defined() ? in.grad_fn() : nullptr;
      if (child && seen.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      order.push_back(std::move(node));
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = std::move(grad);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = grads.find(node);
    if (found == grads.end()) continue;
    Tensor g = std::move(found->second);
    grads.erase(found);
    TRANQ_CHECK(node->backward, "backward through '{}' a second time: the graph was already freed",
                node->name);
    for (size_t i = 0; i < node->saved.size(); ++i) {
      const uint64_t now = node->saved[i].version();
      TRANQ_CHECK(now == node->saved_versions[i],
                  "backward(): a tensor '{}' saved for its backward ({}) was written in place "
                  "(copy_, fill_, zero_, a kernel writing over its input, or an optimizer step) "
                  "after '{}' ran (version {}, now {}); clone it before writing to it, or run "
                  "backward() first",
                  node->name, tensor_str(node->saved[i]), node->name, node->saved_versions[i], now);
    }
    std::vector<Tensor> in_grads;
    {
      NoGradGuard no_grad;
      in_grads = node->backward(g);
    }
    g = Tensor();  // so that gradients passed through (add's {g, g}) are not counted as shared
    TRANQ_CHECK(in_grads.size() == node->inputs.size(), "'{}' returned {} gradients for {} inputs",
                node->name, in_grads.size(), node->inputs.size());
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      // Moved out: a handle left in in_grads would make the gradient look shared.
      Tensor ig = std::move(in_grads[i]);
      if (!ig.defined() || !in.defined() || !in.requires_grad()) continue;
      TRANQ_CHECK(ig.shape() == in.shape(), "'{}' returned gradient {} for input {}", node->name,
                  tensor_str(ig), tensor_str(in));
      if (in.grad_fn()) {
        add_into_slot(grads[in.grad_fn().get()], std::move(ig));
      } else {
        add_into_leaf(in, std::move(ig));
      }
    }
    node->backward = nullptr;  // free saved tensors now
    node->inputs.clear();
    node->saved.clear();
    node->saved_versions.clear();
  }
}

void check_in_place_write(const Tensor& t, const char* op) {
  if (!t.defined() || !t.grad_fn() || !grad_enabled()) return;
  TRANQ_THROW(ValueError,
              "{}: {} has autograd history (it is the output of '{}'); writing it in place would "
              "leave that op differentiating values the tensor no longer holds. Write to a "
              "clone() or to detach(), or under a NoGradGuard",
              op, tensor_str(t), t.grad_fn()->name);
}

}  // namespace tranq
