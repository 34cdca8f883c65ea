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
//  - Each op names the tensors its closure keeps for backward (`saved`: inputs or its own
//    output). One written in place after the op ran (Tensor::copy_, fill_, zero_, a kernel
//    writing over its own input, an optimizer step: Tensor::version changed) makes backward
//    throw ValueError naming the op, as PyTorch does, instead of differentiating with values
//    the forward did not see. Inputs an op does not keep (add's, reshape's) may change freely.
//  - A tensor with autograd history (a grad_fn) cannot be written in place while grad mode is
//    on (ValueError): its node would still differentiate the values it no longer holds.
//    Write to a clone(), detach() it, or write under a NoGradGuard. Views made by
//    Tensor::view/narrow/transpose carry no history, so a write through one is not refused
//    (only counted, which catches it where an op saved that memory): unlike PyTorch, which
//    tracks views of tensors with history.
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
  std::vector<Tensor> saved;             // what backward reads (undefined ones left out)
  std::vector<uint64_t> saved_versions;  // their Tensor::version() when the op ran
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
// saved lists the tensors the closure reads (undefined entries are ignored); backward checks
// that none was written in place since.
Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs,
              std::vector<Tensor> saved, BackwardFn backward);

// Throws ValueError when t has autograd history and grad mode is on: the in-place writes
// (Tensor::copy_, fill_, zero_, kernels writing over an input) call it before writing.
void check_in_place_write(const Tensor& t, const char* op);

// Runs the backward pass (Tensor::backward calls this).
void run_backward(const Tensor& root, const Tensor& grad);

}  // namespace tranq

namespace tranq {
// dst += src, used to sum gradients. The CPU version is built in; other backends register one.
using AccumulateFn = void (*)(const Tensor& dst, const Tensor& src);
void register_grad_accumulator(DeviceType type, AccumulateFn fn);
void accumulate_grad(const Tensor& dst, const Tensor& src);
}  // namespace tranq
