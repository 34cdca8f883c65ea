// CUDA optimizer updates, single-parameter and multi-tensor (one launch for a list of
// parameters with per-parameter learning rates). Both forms run the same per-element device
// function, so they agree bit for bit. Each operation is rounded on its own (mul_rn, add_rn,
// ...: never contracted into an FMA), following kernels/cpu/optim_update.cpp's expressions
// operation by operation; per-parameter constants are computed on the host exactly as there.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/optim_update.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::add_rn;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::div_rn;
using ::tranq::cuda::grid_exact;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;
using ::tranq::cuda::mul_rn;
using ::tranq::cuda::sqrt_rn;

// Elements per block of the multi-tensor kernels.
constexpr int64_t kMultiChunk = 4096;

template <class T>
struct SgdConsts {
  T wd, mom, damp;  // weight decay, momentum, 1 - dampening
  bool decay, use_momentum, nesterov, first;
};
template <class T>
struct SgdEntry {
  T* p;
  const T* g;
  T* buf;
  int64_t n;
  T neg_lr;
  int64_t lr_slot;  // lr_table entry of the lr_table forms (neg_lr is derived on the device)
};

template <class T>
struct AdamConsts {
  T b1, b2, omb1, omb2, eps, wd;
  bool l2, decay;  // L2 decay into the gradient (Adam), decoupled decay (AdamW)
};
template <class T>
struct AdamEntry {
  T* p;
  const T* g;
  T* m;
  T* v;
  int64_t n;
  T neg_step_size, c2, shrink;  // -(lr / bc1), sqrt(bc2), 1 - lr * weight_decay
  // The lr_table forms: the table entry, and what neg_step_size and shrink are derived from.
  int64_t lr_slot;
  double bc1, weight_decay;
};

// Block b of a multi-tensor launch updates elements [chunk * kMultiChunk, ...) of tensor `tensor`.
struct BlockTask {
  int32_t tensor;
  int32_t chunk;
};

template <class T>
__device__ inline void sgd_element(const SgdEntry<T>& e, const SgdConsts<T>& k, int64_t i) {
  const T p = e.p[i];
  T d = k.decay ? add_rn(e.g[i], mul_rn(k.wd, p)) : e.g[i];
  if (k.use_momentum) {
    const T b = k.first ? d : add_rn(mul_rn(e.buf[i], k.mom), mul_rn(k.damp, d));
    e.buf[i] = b;
    d = k.nesterov ? add_rn(d, mul_rn(k.mom, b)) : b;
  }
  e.p[i] = add_rn(p, mul_rn(e.neg_lr, d));
}

template <class T>
__device__ inline void adam_element(const AdamEntry<T>& e, const AdamConsts<T>& k, int64_t i) {
  T p = e.p[i];
  if (k.decay) p = mul_rn(p, e.shrink);
  const T g = k.l2 ? add_rn(e.g[i], mul_rn(k.wd, p)) : e.g[i];
  const T m = add_rn(mul_rn(e.m[i], k.b1), mul_rn(k.omb1, g));
  const T v = add_rn(mul_rn(e.v[i], k.b2), mul_rn(mul_rn(k.omb2, g), g));
  e.m[i] = m;
  e.v[i] = v;
  const T denom = add_rn(div_rn(sqrt_rn(v), e.c2), k.eps);
  e.p[i] = add_rn(p, mul_rn(e.neg_step_size, div_rn(m, denom)));
}

template <class T>
__global__ void sgd_kernel(SgdEntry<T> e, SgdConsts<T> k) {
  TRANQ_GRID_STRIDE_LOOP(i, e.n) sgd_element(e, k, i);
}

template <class T>
__global__ void adam_kernel(AdamEntry<T> e, AdamConsts<T> k) {
  TRANQ_GRID_STRIDE_LOOP(i, e.n) adam_element(e, k, i);
}

// The lr_table forms: the lr-dependent constants from the table entry, rounded as the host
// rounds them for the host-lrs forms (adam_entry, multi_sgd_update): -lr; -(lr / bc1) and
// 1 - lr * weight_decay in double, never contracted.
template <class T>
__device__ inline void apply_lr(SgdEntry<T>& e, double lr) {
  e.neg_lr = static_cast<T>(-lr);
}
template <class T>
__device__ inline void apply_lr(AdamEntry<T>& e, double lr) {
  e.neg_step_size = static_cast<T>(-div_rn(lr, e.bc1));
  e.shrink = static_cast<T>(add_rn(1.0, -mul_rn(lr, e.weight_decay)));
}

template <class Entry, class Consts, class Element>
__device__ inline void multi_block(const Entry* entries, const BlockTask* tasks, const Consts& k,
                                   const double* lr_table, Element element) {
  const BlockTask task = tasks[blockIdx.x];
  Entry e = entries[task.tensor];
  if (lr_table != nullptr) apply_lr(e, lr_table[e.lr_slot]);
  const int64_t begin = static_cast<int64_t>(task.chunk) * kMultiChunk;
  const int64_t end = begin + kMultiChunk < e.n ? begin + kMultiChunk : e.n;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) element(e, k, i);
}

template <class T>
struct SgdElement {
  __device__ void operator()(const SgdEntry<T>& e, const SgdConsts<T>& k, int64_t i) const {
    sgd_element(e, k, i);
  }
};
template <class T>
struct AdamElement {
  __device__ void operator()(const AdamEntry<T>& e, const AdamConsts<T>& k, int64_t i) const {
    adam_element(e, k, i);
  }
};

// lr_table null: each entry's own constants (host learning rates).
template <class T>
__global__ void multi_sgd_kernel(const SgdEntry<T>* entries, const BlockTask* tasks, SgdConsts<T> k,
                                 const double* lr_table) {
  multi_block(entries, tasks, k, lr_table, SgdElement<T>{});
}

template <class T>
__global__ void multi_adam_kernel(const AdamEntry<T>* entries, const BlockTask* tasks,
                                  AdamConsts<T> k, const double* lr_table) {
  multi_block(entries, tasks, k, lr_table, AdamElement<T>{});
}

// The host-built launch table in device memory: entries, then the block tasks.
template <class Entry>
struct DeviceTable {
  Tensor storage;  // u8 on the device; freed after the launch, ordered on the stream
  const Entry* entries = nullptr;
  const BlockTask* tasks = nullptr;
  int64_t blocks = 0;
};

template <class Entry>
DeviceTable<Entry> upload_table(const std::vector<Entry>& entries, Device dev) {
  std::vector<BlockTask> tasks;
  for (size_t t = 0; t < entries.size(); ++t) {
    const int64_t chunks = (entries[t].n + kMultiChunk - 1) / kMultiChunk;
    TRANQ_CHECK_AS(DeviceError, chunks <= int64_t{0x7fffffff} && t <= size_t{0x7fffffff},
                   "multi-tensor update: tensor {} has too many elements ({})", t, entries[t].n);
    for (int64_t c = 0; c < chunks; ++c)
      tasks.push_back(BlockTask{static_cast<int32_t>(t), static_cast<int32_t>(c)});
  }
  DeviceTable<Entry> table;
  table.blocks = static_cast<int64_t>(tasks.size());
  if (tasks.empty()) return table;
  const size_t entry_bytes = (entries.size() * sizeof(Entry) + 15) / 16 * 16;
  const size_t bytes = entry_bytes + tasks.size() * sizeof(BlockTask);
  // Staged in page-locked memory and queued without a host wait (Tensor::copy_ non_blocking, on
  // the current stream, which the caller launches its kernel on too):
  // the pinned cache keeps the staging block until the copy has run, and after the first steps
  // serves it from the cache. A pageable source could make the runtime wait for staging room,
  // unseen by host_wait_count().
  const Tensor host = Tensor::empty_pinned({static_cast<int64_t>(bytes)}, DType::u8);
  auto* h = host.data<uint8_t>();
  std::memset(h, 0, bytes);
  std::memcpy(h, entries.data(), entries.size() * sizeof(Entry));
  std::memcpy(h + entry_bytes, tasks.data(), tasks.size() * sizeof(BlockTask));
  table.storage = Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, dev);
  table.storage.copy_(host, /*non_blocking=*/true);
  const auto* base = static_cast<const unsigned char*>(table.storage.raw_data());
  table.entries = reinterpret_cast<const Entry*>(base);
  table.tasks = reinterpret_cast<const BlockTask*>(base + entry_bytes);
  return table;
}

void check_like(const Tensor& param, const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  TRANQ_CHECK(
      t.shape() == param.shape() && t.dtype() == param.dtype() && t.device() == param.device(),
      "{}: '{}' is {}, expected {} like the parameter", op, arg, tensor_str(t), tensor_str(param));
  TRANQ_CHECK(t.is_contiguous(), "{}: '{}' must be contiguous", op, arg);
}

template <class T>
SgdConsts<T> sgd_consts(double momentum, double dampening, double weight_decay, bool nesterov,
                        bool first_step) {
  SgdConsts<T> k;
  k.wd = static_cast<T>(weight_decay);
  k.mom = static_cast<T>(momentum);
  k.damp = static_cast<T>(1.0 - dampening);
  k.decay = weight_decay != 0.0;
  k.use_momentum = momentum != 0.0;
  k.nesterov = nesterov;
  k.first = first_step;
  return k;
}

template <class T>
AdamConsts<T> adam_consts(double beta1, double beta2, double eps, double weight_decay,
                          bool decoupled) {
  AdamConsts<T> k;
  k.b1 = static_cast<T>(beta1);
  k.b2 = static_cast<T>(beta2);
  k.omb1 = static_cast<T>(1.0 - beta1);
  k.omb2 = static_cast<T>(1.0 - beta2);
  k.eps = static_cast<T>(eps);
  k.wd = static_cast<T>(weight_decay);
  k.l2 = !decoupled && weight_decay != 0.0;
  k.decay = decoupled && weight_decay != 0.0;
  return k;
}

// Per-parameter Adam constants, in double as torch computes them on Python floats.
template <class T>
AdamEntry<T> adam_entry(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                        const Tensor& exp_avg_sq, double lr, double beta1, double beta2,
                        double weight_decay, int64_t step) {
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
  AdamEntry<T> e;
  e.p = param.data<T>();
  e.g = grad.data<T>();
  e.m = exp_avg.data<T>();
  e.v = exp_avg_sq.data<T>();
  e.n = param.numel();
  e.neg_step_size = static_cast<T>(-(lr / bc1));
  e.c2 = static_cast<T>(bc2_sqrt);
  e.shrink = static_cast<T>(1.0 - lr * weight_decay);
  e.lr_slot = 0;
  e.bc1 = bc1;
  e.weight_decay = weight_decay;
  return e;
}

}  // namespace

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step) {
  const char* op = "sgd_update";
  check_defined(param, op, "param");
  TRANQ_CHECK(param.is_contiguous(), "sgd_update: 'param' must be contiguous");
  check_like(param, grad, op, "grad");
  const bool use_momentum = momentum != 0.0;
  if (use_momentum) check_like(param, momentum_buf, op, "momentum_buf");
  check_on_device(op, param.device(), {});  // the others are on param's device (check_like)
  const int64_t n = param.numel();
  if (n == 0) return;
  DeviceGuard guard(param.device().index);
  cudaStream_t stream = current_stream(param.device().index);
  dispatch_floating(param.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    SgdEntry<T> e{param.data<T>(),
                  grad.data<T>(),
                  use_momentum ? momentum_buf.data<T>() : nullptr,
                  n,
                  static_cast<T>(-lr),
                  0};
    const SgdConsts<T> k = sgd_consts<T>(momentum, dampening, weight_decay, nesterov, first_step);
    sgd_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(e, k);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step) {
  const char* op = "adam_update";
  check_defined(param, op, "param");
  TRANQ_CHECK(param.is_contiguous(), "adam_update: 'param' must be contiguous");
  check_like(param, grad, op, "grad");
  check_like(param, exp_avg, op, "exp_avg");
  check_like(param, exp_avg_sq, op, "exp_avg_sq");
  TRANQ_CHECK(step >= 1, "adam_update: step counts updates from 1, got {}", step);
  check_on_device(op, param.device(), {});
  const int64_t n = param.numel();
  if (n == 0) return;
  DeviceGuard guard(param.device().index);
  cudaStream_t stream = current_stream(param.device().index);
  dispatch_floating(param.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const AdamEntry<T> e =
        adam_entry<T>(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, weight_decay, step);
    const AdamConsts<T> k = adam_consts<T>(beta1, beta2, eps, weight_decay, decoupled);
    adam_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(e, k);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

namespace {

// Both multi-tensor forms: lrs (host) when lr_table is undefined, else lr_table[lr_index[i]]
// read by the kernel. Arguments are checked by the callers.
void launch_multi_sgd(const char* op, const std::vector<Tensor>& params,
                      const std::vector<Tensor>& grads, const std::vector<Tensor>& momentum_bufs,
                      const std::vector<double>& lrs, const Tensor& lr_table,
                      const std::vector<int64_t>& lr_index, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool first_step) {
  if (params.empty()) return;
  const bool use_momentum = momentum != 0.0;
  const Device dev = params[0].device();  // every tensor's (check_multi_update_args)
  check_on_device(op, dev, {{"lr_table", &lr_table}});
  DeviceGuard guard(dev.index);
  cudaStream_t stream = current_stream(dev.index);
  const bool table = lr_table.defined();
  dispatch_floating(params[0].dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    std::vector<SgdEntry<T>> entries;
    for (size_t i = 0; i < params.size(); ++i)
      entries.push_back(SgdEntry<T>{params[i].data<T>(), grads[i].data<T>(),
                                    use_momentum ? momentum_bufs[i].data<T>() : nullptr,
                                    params[i].numel(), table ? T(0) : static_cast<T>(-lrs[i]),
                                    table ? lr_index[i] : int64_t{0}});
    const DeviceTable<SgdEntry<T>> dt = upload_table(entries, dev);
    if (dt.blocks == 0) return;
    const SgdConsts<T> k = sgd_consts<T>(momentum, dampening, weight_decay, nesterov, first_step);
    multi_sgd_kernel<T><<<grid_exact(dt.blocks, op), kThreads, 0, stream>>>(
        dt.entries, dt.tasks, k, table ? lr_table.data<double>() : nullptr);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void launch_multi_adam(const char* op, const std::vector<Tensor>& params,
                       const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avgs,
                       const std::vector<Tensor>& exp_avg_sqs, const std::vector<double>& lrs,
                       const Tensor& lr_table, const std::vector<int64_t>& lr_index, double beta1,
                       double beta2, double eps, double weight_decay, bool decoupled,
                       const std::vector<int64_t>& steps) {
  TRANQ_CHECK(steps.size() == params.size(), "{}: {} params but {} step counts", op, params.size(),
              steps.size());
  for (size_t i = 0; i < steps.size(); ++i)
    TRANQ_CHECK(steps[i] >= 1, "{}: steps[{}] = {}; steps count updates from 1", op, i, steps[i]);
  if (params.empty()) return;
  const Device dev = params[0].device();  // every tensor's (check_multi_update_args)
  check_on_device(op, dev, {{"lr_table", &lr_table}});
  DeviceGuard guard(dev.index);
  cudaStream_t stream = current_stream(dev.index);
  const bool table = lr_table.defined();
  dispatch_floating(params[0].dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    std::vector<AdamEntry<T>> entries;
    for (size_t i = 0; i < params.size(); ++i) {
      // With a table, the host constants of lr 0 are placeholders the kernel replaces.
      entries.push_back(adam_entry<T>(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i],
                                      table ? 0.0 : lrs[i], beta1, beta2, weight_decay, steps[i]));
      if (table) entries.back().lr_slot = lr_index[i];
    }
    const DeviceTable<AdamEntry<T>> dt = upload_table(entries, dev);
    if (dt.blocks == 0) return;
    const AdamConsts<T> k = adam_consts<T>(beta1, beta2, eps, weight_decay, decoupled);
    multi_adam_kernel<T><<<grid_exact(dt.blocks, op), kThreads, 0, stream>>>(
        dt.entries, dt.tasks, k, table ? lr_table.data<double>() : nullptr);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<double>& lrs,
                      double momentum, double dampening, double weight_decay, bool nesterov,
                      bool first_step) {
  const char* op = "multi_sgd_update";
  if (momentum != 0.0) {
    check_multi_update_args(op, params, grads, {&momentum_bufs}, lrs);
  } else {
    check_multi_update_args(op, params, grads, {}, lrs);
  }
  launch_multi_sgd(op, params, grads, momentum_bufs, lrs, Tensor(), {}, momentum, dampening,
                   weight_decay, nesterov, first_step);
}

void multi_sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const Tensor& lr_table,
                      const std::vector<int64_t>& lr_index, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool first_step) {
  const char* op = "multi_sgd_update";
  if (momentum != 0.0) {
    check_multi_update_args(op, params, grads, {&momentum_bufs}, lr_index.size());
  } else {
    check_multi_update_args(op, params, grads, {}, lr_index.size());
  }
  check_lr_table(op, params, lr_table, lr_index);
  launch_multi_sgd(op, params, grads, momentum_bufs, {}, lr_table, lr_index, momentum, dampening,
                   weight_decay, nesterov, first_step);
}

void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& lrs, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, const std::vector<int64_t>& steps) {
  const char* op = "multi_adam_update";
  check_multi_update_args(op, params, grads, {&exp_avgs, &exp_avg_sqs}, lrs);
  launch_multi_adam(op, params, grads, exp_avgs, exp_avg_sqs, lrs, Tensor(), {}, beta1, beta2, eps,
                    weight_decay, decoupled, steps);
}

void multi_adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const Tensor& lr_table, const std::vector<int64_t>& lr_index, double beta1,
                       double beta2, double eps, double weight_decay, bool decoupled,
                       const std::vector<int64_t>& steps) {
  const char* op = "multi_adam_update";
  check_multi_update_args(op, params, grads, {&exp_avgs, &exp_avg_sqs}, lr_index.size());
  check_lr_table(op, params, lr_table, lr_index);
  launch_multi_adam(op, params, grads, exp_avgs, exp_avg_sqs, {}, lr_table, lr_index, beta1, beta2,
                    eps, weight_decay, decoupled, steps);
}

}  // namespace tranq::kernels::cuda
