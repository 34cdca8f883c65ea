#pragma once
// What the CUDA benchmarks share: the no-device skip, the CPU check that comes before any
// timing, host inputs, the buffer sets rotated through so that calls read device memory rather
// than L2, and the timed loop (spans of back-to-back calls between CUDA events) with its
// bandwidth counters ("bytes": bytes read + written per second; "pct_of_d2d": that rate as % of
// a device-to-device copy's rate for the same bytes, measured alongside with the same rotation
// and the same statistic: both are the mean time per call over the same number of spans).
// Include only where TRANQ_WITH_CUDA.
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

// Cold data: in a training step the other layers' work has evicted a kernel's inputs from L2
// before it runs, but a benchmark that re-runs one call on the same buffers finds them there
// once they fit (the H200's L2 is 50 MiB: 2^20 elements of the fused weight pass touch 10 MiB,
// ResNet-20's 272k parameters under SGD 3.3 MB), and would report L2 bandwidth. So every
// benchmark rotates through `sets` copies of its buffers, enough that one round touches at
// least kColdFactor times the L2 size: each call then reads data last touched a round ago.
constexpr double kColdFactor = 4;
constexpr int kMaxSets = 256;

// The current device's L2 size in bytes.
inline double l2_bytes() {
  int dev = 0, v = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&v, cudaDevAttrL2CacheSize, dev);
  return v > 0 ? v : 50.0 * (1 << 20);
}

// The buffer sets to rotate through when one call reads or writes `touched` distinct bytes.
inline int cold_sets(double touched) {
  const double sets = std::ceil(kColdFactor * l2_bytes() / std::max(touched, 1.0));
  return static_cast<int>(std::min<double>(kMaxSets, std::max(1.0, sets)));
}

// Mean seconds per call of `spans` spans of `k` calls of next() (see above).
template <class Op>
double mean_per_call(cudaEvent_t e0, cudaEvent_t e1, int k, int spans, Op& next) {
  double total = 0;
  for (int i = 0; i < spans; ++i) total += span_seconds(e0, e1, k, next) / k;
  return total / spans;
}

// Seconds per D2D copy of `bytes`, the reference for pct_of_d2d: timed as the ops are (spans of
// back-to-back copies, rotating through cold_sets(2 * bytes) source/destination pairs), the
// mean of `spans` spans, as the op's time is.
inline double d2d_seconds(size_t bytes, int spans) {
  const int sets = cold_sets(2.0 * static_cast<double>(bytes));
  char *a = nullptr, *b = nullptr;
  cudaMalloc(&a, bytes * sets);
  cudaMalloc(&b, bytes * sets);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  int set = 0;
  auto copy = [&] {
    const size_t off = bytes * static_cast<size_t>(set);
    cudaMemcpyAsync(b + off, a + off, bytes, cudaMemcpyDeviceToDevice, nullptr);
    set = set + 1 == sets ? 0 : set + 1;
  };
  for (int i = 0; i < 2 * sets; ++i) copy();  // warm-up, as time_loop's
  cudaDeviceSynchronize();
  const int k = calls_per_span(e0, e1, copy);
  const double mean = mean_per_call(e0, e1, k, spans, copy);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return mean;
}

// Each benchmark iteration is one span of back-to-back calls (see above); the manual time set
// is the span's time per call, so "Time" and the counters are per call, and "Time" and "bytes"
// are means over the spans (Google Benchmark sums the manual times). Since an iteration costs
// k calls, the benchmarks fix their iteration count (Iterations()) rather than let
// --benchmark_min_time, which counts per-call time, multiply their cost by k.
// Call i is op(i % sets): the benchmark's buffer set to use (sets = cold_sets(bytes one call
// touches), see above). Before timing, every set is used twice (warm-up; a benchmark whose call
// changes its state then times the steady state). moved: bytes read + written by one call.
// Counters besides bytes and pct_of_d2d: sets, calls_per_span (k) and submit_us (host
// microseconds per call to queue it).
template <class Op>
void time_loop(benchmark::State& state, double moved, int sets, Op op) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  int set = 0;
  auto next = [&] {
    op(set);
    set = set + 1 == sets ? 0 : set + 1;
  };
  for (int i = 0; i < 2 * sets; ++i) next();
  cudaDeviceSynchronize();
  const int k = calls_per_span(e0, e1, next);
  double total = 0, submit_total = 0;
  for (auto _ : state) {
    double submit = 0;
    const double per_call = span_seconds(e0, e1, k, next, &submit) / k;
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
  const int spans = static_cast<int>(state.iterations());
  const double copy_rate = moved / d2d_seconds(static_cast<size_t>(moved / 2), spans);
  const double rate = moved * spans / total;  // moved / the mean time per call
  state.counters["bytes"] =
      benchmark::Counter(moved, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_of_d2d"] = benchmark::Counter(100.0 * rate / copy_rate);
  state.counters["sets"] = benchmark::Counter(sets);
  state.counters["calls_per_span"] = benchmark::Counter(k);
  state.counters["submit_us"] = benchmark::Counter(1e6 * submit_total / spans);
}

}  // namespace tranq::bench
