#pragma once
// Reverse-mode autograd over a dynamic graph. Each differentiable op creates a Node that keeps
// its inputs (to walk the graph) and a backward closure written beside the forward.
//
// Semantics:
//  - backward() computes d(root)/d(leaf) for every leaf with requires_grad and ADDS it to the
//    leaf's grad (accumulate); optimizers clear grads with zero_grad() before the next pass.
//  - A closure reads grad_output and never writes into it. The gradients it returns may be
//    fresh tensors or alias grad_output (add returns {g, g}, reshape a view of g); the engine
//    sums them when an input is used more than once, copying first whenever the tensor it would
//    add into can be seen through another one (Tensor::use_count, storage().use_count()). So
//    no gradient is ever written through an alias: leaves get .grad tensors of their own, and
//    a gradient passed to backward(grad) is left unchanged.
//  - The graph is freed after backward (closures are released): a second backward through
//    the same graph throws.
//  - An input that was written in place after the op used it (Tensor::copy_, fill_, zero_, an
//    optimizer step: Tensor::version changed) makes backward throw ValueError naming the op,
//    as PyTorch does, instead of differentiating with values the forward did not see.
//  - Closures must not capture their own output tensor (that would be a reference cycle);
//    capture output.detach() instead.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tranq {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string name;
  std::vector<Tensor> inputs;  // one returned gradient per input, in this order
  BackwardFn backward;
  std::vector<uint64_t> versions;  // inputs' Tensor::version() when the op ran
};

// True unless a NoGradGuard is alive on this thread.
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any input requires grad: then the op must record a Node.
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a Node to `output` when needs_grad(inputs); returns output either way. The
// closure returns one gradient per input (an undefined Tensor where an input gets none).
Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

// Runs the backward pass (Tensor::backward calls this).
void run_backward(const Tensor& root, const Tensor& grad);

}  // namespace tranq

namespace tranq {
// dst += src, used to sum gradients. The CPU version is built in; other backends register one.
using AccumulateFn = void (*)(const Tensor& dst, const Tensor& src);
void register_grad_accumulator(DeviceType type, AccumulateFn fn);
void accumulate_grad(const Tensor& dst, const Tensor& src);
}  // namespace tranq
