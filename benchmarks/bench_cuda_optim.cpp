// CUDA fused optimizer updates in their TRS form: one launch updates every layer's parameter
// (multi-tensor apply) with its own transition-adaptive learning rate read from a device table,
// SGD with Nesterov momentum and weight decay, and Adam. Checked against the CPU after one
// update on the same inputs (within the tolerance of tests/test_cuda_kernels.cpp: the CPU may
// contract multiply-adds, the GPU rounds each operation), then timed; "bytes" and "pct_of_d2d"
// as in bench_cuda_quant (cuda_bench_util.h). The parameters are ResNet-like: 21 tensors whose
// sizes vary 1:2:4:8, n elements in all. Times are per update: spans of back-to-back updates
// between CUDA events, divided by their count (cuda_bench_util.h). Each benchmark rotates
// through "sets" copies of its tensors, at least 4x the L2 size per round, so that ResNet-20's
// 0.27M parameters (3.3 MB under SGD) are read from device memory, as in a training step,
// rather than from L2 (cuda_bench_util.h).
//   build-*/benchmarks/bench_cuda_optim
// Without a GPU every benchmark reports "no CUDA device: <why>".
#include "tranq/config.h"

#if TRANQ_WITH_CUDA
#include <cmath>
#include <vector>

#include "cuda_bench_util.h"
#include "kernels/optim_update.h"

using namespace tranq;
using namespace tranq::bench;

namespace {

constexpr int kLayers = 21;

struct Lists {
  std::vector<Tensor> params, grads, state1, state2;
};

// kLayers parameters (n elements in all), their gradients and two state tensors, on the host.
Lists host_lists(int64_t n) {
  std::vector<int64_t> sizes;
  int64_t parts = 0;
  for (int i = 0; i < kLayers; ++i) parts += int64_t{1} << (i % 4);
  int64_t left = n;
  for (int i = 0; i < kLayers; ++i) {
    const int64_t s = i + 1 == kLayers ? left : n / parts * (int64_t{1} << (i % 4));
    sizes.push_back(s);
    left -= s;
  }
  Lists l;
  for (int i = 0; i < kLayers; ++i) {
    const uint64_t seed = 10 + 4 * static_cast<uint64_t>(i);
    l.params.push_back(uniform(sizes[i], -0.5, 0.5, seed));
    l.grads.push_back(uniform(sizes[i], -0.1, 0.1, seed + 1));
    l.state1.push_back(uniform(sizes[i], -0.05, 0.05, seed + 2));
    l.state2.push_back(uniform(sizes[i], 0.0, 0.01, seed + 3));
  }
  return l;
}

std::vector<Tensor> on_cuda(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.to(Device::cuda()));
  return out;
}

// |gpu - cpu| <= 16 * 2^-23 * max(1, |cpu|) for every element of every tensor (16 ulp at 1:
// tests/test_cuda_optim.cpp's bound; the CPU may contract multiply-adds, the GPU does not).
bool close(const std::vector<Tensor>& gpu, const std::vector<Tensor>& cpu) {
  for (size_t t = 0; t < cpu.size(); ++t) {
    const Tensor g = gpu[t].to(Device::cpu());
    const float* pg = g.data<float>();
    const float* pc = cpu[t].data<float>();
    for (int64_t i = 0; i < cpu[t].numel(); ++i)
      if (!(std::fabs(pg[i] - pc[i]) <= 16 * 0x1p-23 * std::max(1.0f, std::fabs(pc[i]))))
        return false;
  }
  return true;
}

// Per-layer rates, as the TALR controller leaves them in its device table.
std::vector<double> layer_lrs() {
  std::vector<double> lrs;
  for (int i = 0; i < kLayers; ++i) lrs.push_back(0.05 * (1.0 + 0.1 * i));
  return lrs;
}

std::vector<int64_t> identity_index() {
  std::vector<int64_t> idx;
  for (int i = 0; i < kLayers; ++i) idx.push_back(i);
  return idx;
}

// SGD, momentum 0.9, Nesterov, weight decay 5e-4: reads param, grad, buf; writes param, buf.
void BM_CudaMultiSgdTalr(benchmark::State& state) {
  if (!need_device(state)) return;
  const int64_t n = state.range(0);
  Lists h = host_lists(n);  // copied to every set before the CPU reference updates it
  const int sets = cold_sets(static_cast<double>(n) * 4 * 3);
  std::vector<Lists> d;
  for (int i = 0; i < sets; ++i)
    d.push_back({on_cuda(h.params), on_cuda(h.grads), on_cuda(h.state1), {}});
  const std::vector<double> lrs = layer_lrs();
  const Tensor table = Tensor::from_vector(lrs, {kLayers}).to(Device::cuda());
  const std::vector<int64_t> idx = identity_index();
  kernels::multi_sgd_update(h.params, h.grads, h.state1, lrs, 0.9, 0.0, 5e-4, true, false);
  kernels::multi_sgd_update(d[0].params, d[0].grads, d[0].state1, table, idx, 0.9, 0.0, 5e-4, true,
                            false);
  if (!check(state, close(d[0].params, h.params), "params") ||
      !check(state, close(d[0].state1, h.state1), "momentum"))
    return;
  time_loop(state, static_cast<double>(n) * 4 * 5, sets, [&](int i) {
    Lists& l = d[static_cast<size_t>(i)];
    kernels::multi_sgd_update(l.params, l.grads, l.state1, table, idx, 0.9, 0.0, 5e-4, true, false);
  });
}

// Adam (betas 0.9, 0.999, eps 1e-8, decoupled weight decay 0.01 as AdamW): reads param, grad,
// m, v; writes param, m, v.
void BM_CudaMultiAdamTalr(benchmark::State& state) {
  if (!need_device(state)) return;
  const int64_t n = state.range(0);
  Lists h = host_lists(n);  // copied to every set before the CPU reference updates it
  const int sets = cold_sets(static_cast<double>(n) * 4 * 4);
  std::vector<Lists> d;
  for (int i = 0; i < sets; ++i)
    d.push_back({on_cuda(h.params), on_cuda(h.grads), on_cuda(h.state1), on_cuda(h.state2)});
  const std::vector<double> lrs = layer_lrs();
  const Tensor table = Tensor::from_vector(lrs, {kLayers}).to(Device::cuda());
  const std::vector<int64_t> idx = identity_index();
  const std::vector<int64_t> steps(kLayers, 3);
  kernels::multi_adam_update(h.params, h.grads, h.state1, h.state2, lrs, 0.9, 0.999, 1e-8, 0.01,
                             true, steps);
  kernels::multi_adam_update(d[0].params, d[0].grads, d[0].state1, d[0].state2, table, idx, 0.9,
                             0.999, 1e-8, 0.01, true, steps);
  if (!check(state, close(d[0].params, h.params), "params") ||
      !check(state, close(d[0].state1, h.state1), "exp_avg") ||
      !check(state, close(d[0].state2, h.state2), "exp_avg_sq"))
    return;
  time_loop(state, static_cast<double>(n) * 4 * 7, sets, [&](int i) {
    Lists& l = d[static_cast<size_t>(i)];
    kernels::multi_adam_update(l.params, l.grads, l.state1, l.state2, table, idx, 0.9, 0.999, 1e-8,
                               0.01, true, steps);
  });
}

// 0.27M (ResNet-20), 11.7M (ResNet-18) and 2^25 parameters. A fixed number of timed spans (each
// >= 1 ms of back-to-back updates): the setup and CPU check (seconds at 2^25) then run once per
// size, not once per trial run.
void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(272474)
      ->Arg(11689512)
      ->Arg(int64_t{1} << 25)
      ->Iterations(50)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_CudaMultiSgdTalr)->Apply(sizes);
BENCHMARK(BM_CudaMultiAdamTalr)->Apply(sizes);

#endif  // TRANQ_WITH_CUDA
