#pragma once
// What the CUDA benchmarks share: the no-device skip, the CPU check that comes before any
// timing, host inputs, and the timed loop (spans of back-to-back calls between CUDA events)
// with its bandwidth counters ("bytes": bytes read + written per second; "pct_of_d2d": that
// rate as % of a device-to-device copy's rate for the same bytes, measured alongside and timed
// the same way). Include only where TRANQ_WITH_CUDA.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
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

// Timing: one op() call at 2^20 elements is a few microseconds of GPU work, which can be less
// than the host's time to check arguments, allocate and launch it, so events around a single
// call would measure the host. Each timed span is instead `k` back-to-back calls between two
// events on the legacy default stream (the ops' stream), with k chosen so the span is at least
// kMinSpanSeconds; the time per call is span / k. A call whose submission still outlasts its
// GPU work leaves the span host-bound: the "submit_us" counter (host time per call to queue
// it) shows when that is so.
constexpr double kMinSpanSeconds = 1e-3;
constexpr int kMaxCallsPerSpan = 4096;

// Seconds between events recorded before and after `k` back-to-back op() calls (the host waits
// for the second); *submit, if given, gets the host's seconds spent in the k calls.
template <class Op>
double span_seconds(cudaEvent_t e0, cudaEvent_t e1, int k, Op& op, double* submit = nullptr) {
  cudaEventRecord(e0, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < k; ++i) op();
  const auto t1 = std::chrono::steady_clock::now();
  cudaEventRecord(e1, nullptr);
  cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  if (submit != nullptr) *submit = std::chrono::duration<double>(t1 - t0).count();
  return ms * 1e-3;
}

// The calls per span that make it last at least kMinSpanSeconds (at most kMaxCallsPerSpan):
// grown from measured spans, at least doubling each round. op() has been warmed up.
template <class Op>
int calls_per_span(cudaEvent_t e0, cudaEvent_t e1, Op& op) {
  int k = 1;
  for (;;) {
    const double s = span_seconds(e0, e1, k, op);
    if (s >= kMinSpanSeconds || k >= kMaxCallsPerSpan) return k;
    // 1.25: margin, so that the next span usually reaches the minimum at once.
    const double want = s > 0 ? std::ceil(1.25 * kMinSpanSeconds / s * k) : 2.0 * k;
    k = static_cast<int>(std::min<double>(kMaxCallsPerSpan, std::max(2.0 * k, want)));
  }
}

// Seconds per D2D copy of `bytes`, the reference for pct_of_d2d: timed as the ops are (spans of
// back-to-back copies, see above), the best of a few spans.
inline double d2d_seconds(size_t bytes) {
  void *a = nullptr, *b = nullptr;
  cudaMalloc(&a, bytes);
  cudaMalloc(&b, bytes);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  auto copy = [&] { cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, nullptr); };
  copy();  // warm-up
  cudaDeviceSynchronize();
  const int k = calls_per_span(e0, e1, copy);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) best = std::min(best, span_seconds(e0, e1, k, copy) / k);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return best;
}

// Each benchmark iteration is one span of back-to-back op() calls (see above); the manual
// time set is the span's time per call, so "Time" and the counters are per op() call. Since
// an iteration costs k calls, the benchmarks fix their iteration count (Iterations()) rather
// than let --benchmark_min_time, which counts per-call time, multiply their cost by k.
// moved: bytes read + written by one op() call. Counters besides bytes and pct_of_d2d:
// calls_per_span (k) and submit_us (host microseconds per call to queue it).
template <class Op>
void time_loop(benchmark::State& state, double moved, Op op) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  op();  // warm-up
  cudaDeviceSynchronize();
  const int k = calls_per_span(e0, e1, op);
  double total = 0, submit_total = 0;
  for (auto _ : state) {
    double submit = 0;
    const double per_call = span_seconds(e0, e1, k, op, &submit) / k;
    state.SetIterationTime(per_call);
    total += per_call;
    submit_total += submit / k;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    state.SkipWithError(cudaGetErrorString(err));
    return;
  }
  const double iters = static_cast<double>(state.iterations());
  const double copy_rate = moved / d2d_seconds(static_cast<size_t>(moved / 2));
  const double rate = moved * iters / total;
  state.counters["bytes"] =
      benchmark::Counter(moved, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_of_d2d"] = benchmark::Counter(100.0 * rate / copy_rate);
  state.counters["calls_per_span"] = benchmark::Counter(k);
  state.counters["submit_us"] = benchmark::Counter(1e6 * submit_total / iters);
}

}  // namespace tranq::bench
