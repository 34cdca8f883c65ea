#pragma once
// What the CUDA benchmarks share: the no-device skip, the CPU check that comes before any
// timing, host inputs, and the timed loop between CUDA events with its bandwidth counters
// ("bytes": bytes read + written per second; "pct_of_d2d": that rate as % of a device-to-device
// copy's rate for the same bytes, measured alongside). Include only where TRANQ_WITH_CUDA.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda_runtime.h"

namespace tranq::bench {

inline bool need_device(benchmark::State& state) {
  std::string why;
  if (cuda::device_count(&why) == 0) {
    state.SkipWithError(("no CUDA device: " + why).c_str());
    return false;
  }
  cuda::init();
  return true;
}

inline bool check(benchmark::State& state, bool ok, const char* what) {
  if (!ok) state.SkipWithError((std::string("CUDA result differs from the CPU: ") + what).c_str());
  return ok;
}

inline Tensor uniform(int64_t n, double lo, double hi, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({n}, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.uniform(lo, hi));
  return t;
}

inline bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.to(Device::cpu()), hb = b.to(Device::cpu());
  return ha.nbytes() == hb.nbytes() && std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

// Seconds per D2D copy of `bytes` (best of a few), the reference for pct_of_d2d.
inline double d2d_seconds(size_t bytes) {
  void *a = nullptr, *b = nullptr;
  cudaMalloc(&a, bytes);
  cudaMalloc(&b, bytes);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  float best = 1e30f;
  for (int rep = 0; rep < 10; ++rep) {
    cudaEventRecord(e0, nullptr);
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, nullptr);
    cudaEventRecord(e1, nullptr);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    if (rep > 0) best = std::min(best, ms);  // the first copy warms up
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return best * 1e-3;
}

// Runs op() once per iteration between CUDA events; sets the manual time and the counters.
// moved: bytes read + written by one op() call.
template <class Op>
void time_loop(benchmark::State& state, double moved, Op op) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  op();  // warm-up
  cudaDeviceSynchronize();
  double total = 0;
  for (auto _ : state) {
    cudaEventRecord(e0, nullptr);
    op();
    cudaEventRecord(e1, nullptr);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    state.SetIterationTime(ms * 1e-3);
    total += ms * 1e-3;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    state.SkipWithError(cudaGetErrorString(err));
    return;
  }
  const double copy_rate = moved / d2d_seconds(static_cast<size_t>(moved / 2));
  const double rate = moved * static_cast<double>(state.iterations()) / total;
  state.counters["bytes"] =
      benchmark::Counter(moved, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_of_d2d"] = benchmark::Counter(100.0 * rate / copy_rate);
}

}  // namespace tranq::bench
