// CUDA quantizer throughput: the fused weight quantize + transition count
// (quantize_weight_and_count), the activation fake-quantize forward and backward, and a
// device-to-device cudaMemcpy moving the same bytes as the reference bandwidth. Each op is first
// checked against the CPU on the same inputs (a fast wrong kernel posts no number). Reported:
// "bytes" (bytes read + written per second, kIsRate) and "pct_of_d2d" (that rate as % of the
// D2D copy's rate for the same bytes, measured alongside; both mean times per call). Times are
// per call: CUDA event time of a span of back-to-back calls (at least 1 ms) divided by its calls
// (cuda_bench_util.h); a fixed 30 spans per benchmark, so --benchmark_min_time has no effect.
// Every benchmark rotates through "sets" copies of its buffers, at least 4x the L2 size per
// round, so that 2^20 elements time device memory as 2^24 do, not L2 (cuda_bench_util.h).
//   build-*/benchmarks/bench_cuda_quant
// Without a GPU every benchmark reports "no CUDA device: <why>". Built only with the CUDA
// backend; otherwise this file registers nothing (benchmark_main still provides main).
#include "tranq/config.h"

#if TRANQ_WITH_CUDA
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cmath>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "cuda_bench_util.h"
#include "kernels/qat_fused.h"
#include "kernels/quantize.h"
#include "kernels/transition_stats.h"

using namespace tranq;
using namespace tranq::bench;

namespace {

constexpr int64_t kWeightChannels = 512;

// w: f32 [512, n/512] with per-channel scales, 2-bit weights. Timed in the training step's
// form (counts into a device table): each call re-quantizes and counts (reads w, codes, prev;
// writes y, codes, prev), alternating per buffer set between two weight states w and w_moved,
// so that every timed call changes the codes of the weights whose code differs between the
// two, each back to the code it held before (changed = oscillated: the counting's slowest
// path, its block atomics included). "changed_per_call" and "oscillated_per_call": the counts
// of the last timed call, checked to be that steady state.
void BM_CudaQuantizeWeightAndCount(benchmark::State& state) {
  if (!need_device(state)) return;
  const int64_t n = state.range(0);
  const kernels::QuantRange r = kernels::weight_range(2);
  const Shape shape = {kWeightChannels, n / kWeightChannels};
  const Tensor w = uniform(n, -1, 1, 1).view(shape);
  const Tensor scale = uniform(kWeightChannels, 0.2, 0.6, 2);
  const Tensor w_moved = uniform(n, -1, 1, 3).view(shape);
  // CPU reference and CUDA on the same inputs: init on w, then the fused pass on w_moved.
  Tensor codes = Tensor::empty({n}, DType::i8), prev = Tensor::empty({n}, DType::i8);
  kernels::weight_transition_init(w, scale, r, codes, prev, 0.1);
  Tensor y = Tensor::empty(shape, DType::f32);
  const kernels::TransitionCounts k =
      kernels::quantize_weight_and_count(w_moved, scale, r, y, codes, prev, 0.1);
  const Tensor dw = w.to(Device::cuda()), dw_moved = w_moved.to(Device::cuda());
  const Tensor dscale = scale.to(Device::cuda());
  Tensor dcodes = Tensor::empty({n}, DType::i8, Device::cuda());
  Tensor dprev = Tensor::empty({n}, DType::i8, Device::cuda());
  Tensor dy = Tensor::empty(shape, DType::f32, Device::cuda());
  kernels::weight_transition_init(dw, dscale, r, dcodes, dprev, 0.1);
  const kernels::TransitionCounts dk =
      kernels::quantize_weight_and_count(dw_moved, dscale, r, dy, dcodes, dprev, 0.1);
  if (!check(state, dk.changed == k.changed && dk.oscillated == k.oscillated && dk.near == k.near,
             "counts") ||
      !check(state, same_bits(dy, y), "y") || !check(state, same_bits(dcodes, codes), "codes") ||
      !check(state, same_bits(dprev, prev), "prev_codes"))
    return;
  // The training step's form, counts into a device table: the synchronous form above would add
  // a device-to-host copy and the host's wake-up to every call. Validated too.
  Tensor table = Tensor::zeros({1, kernels::kCountColumns}, DType::i64, Device::cuda());
  kernels::weight_transition_init(dw, dscale, r, dcodes, dprev, 0.1);
  kernels::quantize_weight_and_count_into(dw_moved, dscale, r, dy, dcodes, dprev, 0.1, table, 0);
  const std::vector<int64_t> row = table.to(Device::cpu()).to_vector<int64_t>();
  if (!check(state,
             row[kernels::kCountChanged] == k.changed &&
                 row[kernels::kCountOscillated] == k.oscillated &&
                 row[kernels::kCountNear] == k.near,
             "counts table") ||
      !check(state, same_bits(dy, y), "y (table form)") ||
      !check(state, same_bits(dcodes, codes), "codes (table form)"))
    return;
  // Buffer sets: the checked one (its codes hold w_moved's, so w comes next) and copies
  // initialised on w (w_moved next). One call touches w, y (4 B each), codes and prev (1 B).
  struct Set {
    Tensor w, w_moved, y, codes, prev;
    bool moved_next;
  };
  const int sets = cold_sets(static_cast<double>(n) * 10);
  std::vector<Set> b{{dw, dw_moved, dy, dcodes, dprev, false}};
  for (int i = 1; i < sets; ++i) {
    Set t{w.to(Device::cuda()),
          w_moved.to(Device::cuda()),
          Tensor::empty(shape, DType::f32, Device::cuda()),
          Tensor::empty({n}, DType::i8, Device::cuda()),
          Tensor::empty({n}, DType::i8, Device::cuda()),
          true};
    kernels::weight_transition_init(t.w, dscale, r, t.codes, t.prev, 0.1);
    b.push_back(std::move(t));
  }
  time_loop(state, static_cast<double>(n) * (4 + 4 + 2 + 2), sets, [&](int i) {
    Set& t = b[static_cast<size_t>(i)];
    kernels::quantize_weight_and_count_into(t.moved_next ? t.w_moved : t.w, dscale, r, t.y, t.codes,
                                            t.prev, 0.1, table, 0);
    t.moved_next = !t.moved_next;
  });
  if (state.error_occurred()) return;
  const std::vector<int64_t> last = table.to(Device::cpu()).to_vector<int64_t>();
  state.counters["changed_per_call"] = static_cast<double>(last[kernels::kCountChanged]);
  state.counters["oscillated_per_call"] = static_cast<double>(last[kernels::kCountOscillated]);
  check(state,
        k.changed > 0 && last[kernels::kCountChanged] == k.changed &&
            last[kernels::kCountOscillated] == k.changed,
        "the timed calls' counts (every code that differs between w and w_moved changes back "
        "to its previous value)");
}

// Activations: f32 [n], one scale, 4-bit unsigned range, no codes (reads x, writes y).
void BM_CudaActQuantForward(benchmark::State& state) {
  if (!need_device(state)) return;
  const int64_t n = state.range(0);
  const kernels::QuantRange r = kernels::activation_range(4);
  const Tensor x = uniform(n, -0.5, 2.5, 4), scale = Tensor::full({1}, 1.7);
  Tensor y = Tensor::empty({n});
  kernels::fake_quantize_forward(x, scale, r, y, Tensor());
  const Tensor ds = scale.to(Device::cuda());
  const int sets = cold_sets(static_cast<double>(n) * 8);
  std::vector<Tensor> dx, dy;
  for (int i = 0; i < sets; ++i) {
    dx.push_back(x.to(Device::cuda()));
    dy.push_back(Tensor::empty({n}, DType::f32, Device::cuda()));
  }
  kernels::fake_quantize_forward(dx[0], ds, r, dy[0], Tensor());
  if (!check(state, same_bits(dy[0], y), "y")) return;
  time_loop(state, static_cast<double>(n) * 8, sets, [&](int i) {
    kernels::fake_quantize_forward(dx[static_cast<size_t>(i)], ds, r, dy[static_cast<size_t>(i)],
                                   Tensor());
  });
}

// The STE backward with the scale gradient (reads x, dy; writes dx; dscale reduced on the GPU).
void BM_CudaActQuantBackward(benchmark::State& state) {
  if (!need_device(state)) return;
  const int64_t n = state.range(0);
  const kernels::QuantRange r = kernels::activation_range(4);
  const Tensor x = uniform(n, -0.5, 2.5, 5), g = uniform(n, -1, 1, 6);
  const Tensor scale = Tensor::full({1}, 1.7);
  const double factor = kernels::lsq_grad_scale_factor(n, r);
  Tensor gx = Tensor::empty({n}), gs = Tensor::empty({1});
  kernels::fake_quantize_backward(x, scale, r, g, gx, gs, factor);
  const Tensor ds = scale.to(Device::cuda());
  const int sets = cold_sets(static_cast<double>(n) * 12);
  std::vector<Tensor> dx, dg, dgx;
  for (int i = 0; i < sets; ++i) {
    dx.push_back(x.to(Device::cuda()));
    dg.push_back(g.to(Device::cuda()));
    dgx.push_back(Tensor::empty({n}, DType::f32, Device::cuda()));
  }
  Tensor dgs = Tensor::empty({1}, DType::f32, Device::cuda());
  kernels::fake_quantize_backward(dx[0], ds, r, dg[0], dgx[0], dgs, factor);
  const double ref = gs.item(), got = dgs.to(Device::cpu()).item();
  if (!check(state, same_bits(dgx[0], gx), "dx") ||
      !check(state, std::fabs(got - ref) <= 1e-5 * std::fabs(ref) + 1e-12, "dscale"))
    return;
  time_loop(state, static_cast<double>(n) * 12, sets, [&](int i) {
    const size_t j = static_cast<size_t>(i);
    kernels::fake_quantize_backward(dx[j], ds, r, dg[j], dgx[j], dgs, factor);
  });
}

// The reference: a device-to-device copy of n f32 elements (reads and writes 8 bytes each),
// rotating through slices of larger buffers as the ops rotate through their sets.
void BM_CudaD2DCopy(benchmark::State& state) {
  if (!need_device(state)) return;
  const int64_t n = state.range(0);
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  const int sets = cold_sets(2.0 * static_cast<double>(bytes));
  const Tensor a = Tensor::zeros({n * sets}, DType::f32, Device::cuda());
  Tensor b = Tensor::empty({n * sets}, DType::f32, Device::cuda());
  char* pa = static_cast<char*>(a.raw_data());
  char* pb = static_cast<char*>(b.raw_data());
  time_loop(state, 2.0 * static_cast<double>(bytes), sets, [&](int i) {
    const size_t off = bytes * static_cast<size_t>(i);
    cudaMemcpyAsync(pb + off, pa + off, bytes, cudaMemcpyDeviceToDevice, nullptr);
  });
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(int64_t{1} << 20)
      ->Arg(int64_t{1} << 24)
      ->Iterations(30)  // spans of >= 1 ms each (time_loop); min_time would count per call
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_CudaQuantizeWeightAndCount)->Apply(sizes);
BENCHMARK(BM_CudaActQuantForward)->Apply(sizes);
BENCHMARK(BM_CudaActQuantBackward)->Apply(sizes);
BENCHMARK(BM_CudaD2DCopy)->Apply(sizes);

#endif  // TRANQ_WITH_CUDA
