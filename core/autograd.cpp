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

void register_grad_accumulator(DeviceType type, AccumulateFn fn) { accumulator(type) = fn; }

void accumulate_grad(const Tensor& dst, const Tensor& src) {
  check_same_shape(dst, src, "accumulate_grad");
  TRANQ_CHECK(dst.dtype() == src.dtype() && dst.device() == src.device(),
              "accumulate_grad: {} vs {}", tensor_str(dst), tensor_str(src));
  AccumulateFn fn = accumulator(dst.device().type);
  TRANQ_CHECK_AS(DeviceError, fn != nullptr, "no gradient accumulator for {}", dst.device().str());
  fn(dst, src);
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!needs_grad(inputs)) return output;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.set_grad_fn(std::move(node));
  return output;
}

namespace {

// Adds g into the slot, taking ownership of g when the slot is empty (no copy).
void add_into(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
  } else {
    if (slot.storage().use_count() > 1) slot = slot.clone();  // never write into shared data
    accumulate_grad(slot, g);
  }
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_in) {
  TRANQ_CHECK(root.requires_grad(), "backward(): tensor {} does not require grad", tensor_str(root));
  Tensor grad = grad_in;
  if (!grad.defined()) {
    TRANQ_CHECK(root.numel() == 1, "backward(): a gradient is needed for non-scalar {}",
                tensor_str(root));
    grad = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  check_same_shape(root, grad, "backward");
  if (!root.grad_fn()) {  // a leaf
    Tensor g = root.grad();
    add_into(g, grad.clone());
    root.set_grad(g);
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
  grads[root.grad_fn().get()] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = grads.find(node);
    if (found == grads.end()) continue;
    Tensor g = std::move(found->second);
    grads.erase(found);
    TRANQ_CHECK(node->backward, "backward through '{}' a second time: the graph was already freed",
                node->name);
    std::vector<Tensor> in_grads;
    {
      NoGradGuard no_grad;
      in_grads = node->backward(g);
    }
    TRANQ_CHECK(in_grads.size() == node->inputs.size(), "'{}' returned {} gradients for {} inputs",
                node->name, in_grads.size(), node->inputs.size());
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      const Tensor& ig = in_grads[i];
      if (!ig.defined() || !in.defined() || !in.requires_grad()) continue;
      TRANQ_CHECK(ig.shape() == in.shape(), "'{}' returned gradient {} for input {}", node->name,
                  tensor_str(ig), tensor_str(in));
      if (in.grad_fn()) {
        add_into(grads[in.grad_fn().get()], ig);
      } else {
        // A leaf's grad must own its memory: closures may return aliases (add passes its
        // incoming gradient to both inputs) and users read .grad() after the pass.
        Tensor lg = in.grad();
        add_into(lg, (!lg.defined() && ig.storage().use_count() > 1) ? ig.clone() : ig);
        in.set_grad(lg);
      }
    }
    node->backward = nullptr;  // free saved tensors now
    node->inputs.clear();
  }
}

}  // namespace tranq
