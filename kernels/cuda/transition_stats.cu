// CUDA weight transition pass: one kernel updates codes/prev_codes (and, for
// quantize_weight_and_count, writes the quantized weight) and counts changes, oscillations and
// near-transition weights. Counts are integers: each block sums its threads' counts and adds
// the total to a 64-bit device counter with an integer atomic, exact in any order.
//
// A zero, non-finite or too small scale must change nothing (as on the CPU, which checks before its
// loop): a first tiny kernel counts bad scales into the same counter buffer, the main kernel's
// blocks return at once when that count is not zero, and the host reads all counters in one copy.
// The _into forms run the pass into a row of a device counts table and never wait: one block
// first writes the row and the bad-scale count (a scratch word the pass reads, and a negative
// `changed` in the row), so each call is two launches.
#include <cstdint>
#include <type_traits>

#include "core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/quant_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/qat_fused.h"
#include "kernels/quantize.h"
#include "kernels/transition_stats.h"

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::block_sum;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_exact;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;
using ::tranq::cuda::mul_rn;

// counters[kChanged..kNear] are the counts; counters[kBadScales] the invalid scales.
enum Counter { kChanged = 0, kOscillated = 1, kNear = 2, kBadScales = 3, kNumCounters = 4 };

// A quiet NaN of T, written over the values of a pass whose scale was bad.
template <class T>
__device__ T nan_of();
template <>
__device__ float nan_of<float>() {
  return __int_as_float(0x7fc00000);
}
template <>
__device__ double nan_of<double>() {
  return __longlong_as_double(0x7ff8000000000000LL);
}

// Adds the number of scale values the quantizer cannot use (quant_scale_usable) to *bad.
template <class T>
__global__ void count_bad_scales_kernel(const T* scale, int64_t n, QuantRange r,
                                        unsigned long long* bad) {
  TRANQ_GRID_STRIDE_LOOP(i, n) {
    if (!quant_scale_usable(scale[i], r)) atomicAdd(bad, 1ull);
  }
}

// Starts a counts-table row before the pass of the _into forms, in one launch: counts the
// scale values the quantizer cannot use into *bad (read by the pass's blocks) and writes the
// whole row: numel, changed = -bad (the pass adds nothing then), oscillated = near = 0. One
// block, so no memsets and no kernel after the pass are needed.
template <class T>
__global__ void start_row_kernel(const T* scale, int64_t channels, QuantRange r, long long* row,
                                 int64_t numel, unsigned long long* bad) {
  __shared__ long long smem[kThreads];
  long long count = 0;
  for (int64_t i = threadIdx.x; i < channels; i += blockDim.x)
    count += quant_scale_usable(scale[i], r) ? 0 : 1;
  const long long total = block_sum(count, smem);
  if (threadIdx.x == 0) {
    *bad = static_cast<unsigned long long>(total);
    row[kCountNumel] = numel;
    row[kCountChanged] = -total;
    row[kCountOscillated] = 0;
    row[kCountNear] = 0;
  }
}

// Per element, exactly kernels/cpu/transition_stats.cpp's transition_loop: the code of w,
// codes/prev updated in place, the changed/oscillated/near counts, and the value level/g
// (returned; used when the pass writes y).
template <class T, bool kBinary, bool kInit>
struct TransitionStep {
  T m, lo, hi, hi1, inv_g, nf;
  long long changed = 0, oscillated = 0, near = 0;

  __device__ T operator()(T w, int8_t& code_io, int8_t& prev_io) {
    const T t = mul_rn(w, m);  // never fused into t - 0.5 below: same t as the CPU
    const T level = kBinary ? quant_level_binary(t) : quant_level_multibit(t, lo, hi);
    const int8_t code = static_cast<int8_t>(static_cast<int32_t>(level));
    const T d = kBinary ? quant_transition_distance_binary(t)
                        : quant_transition_distance_multibit(t, lo, hi1);
    near += d < nf ? 1 : 0;
    if constexpr (kInit) {
      code_io = code;
      prev_io = code;
    } else {
      const int8_t old = code_io, before = prev_io;
      const bool moved = code != old;
      changed += moved ? 1 : 0;
      oscillated += (moved && code == before) ? 1 : 0;
      prev_io = moved ? old : before;
      code_io = code;
    }
    return mul_rn(level, inv_g);
  }
};

__device__ inline bool aligned_to(const void* p, unsigned bytes) {
  return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

// One block per piece (quant_piece with kCudaChunk): a single scale per block, and at most
// kCudaChunk elements, so indices within the piece are 32-bit. f32 pieces whose pointers
// allow it move 4 elements per thread per iteration (one 16-byte load of w, 4-byte loads of
// codes and prev, all before the stores): several times the bytes in flight of one element
// at a time, which a bandwidth-bound pass needs. Other pieces, and the last (len % 4)
// elements, go one element at a time. Each thread reads its own elements before writing
// them, so y may alias w. counters[0..2] receive changed, oscillated, near; nothing is done
// when *bad != 0.
template <class T, bool kBinary, bool kInit, bool kValues>
__global__ void __launch_bounds__(kThreads)
    transition_kernel(const T* w, const T* scale, int8_t* codes, int8_t* prev, T* y, int64_t inner,
                      QuantRange r, T nf, unsigned long long* counters,
                      const unsigned long long* bad, bool nan_on_bad) {
  __shared__ long long smem[kThreads];
  int64_t c, b, e;
  quant_piece(blockIdx.x, inner, kCudaChunk, &c, &b, &e);
  const int len = static_cast<int>(e - b);
  const T* wb = w + b;
  int8_t* cb = codes + b;
  int8_t* pb = prev + b;
  T* yb = kValues ? y + b : nullptr;
  // Both loads are issued before the branch: two round trips would otherwise come first.
  const unsigned long long bad_count = *bad;
  const T s = scale[c];
  // The same value for every thread, so the whole block leaves (no thread waits in block_sum).
  // With nan_on_bad (the _into form, y not aliasing w) values still get written: NaN, so that
  // a forward using them cannot look healthy. Otherwise nothing is written, as promised.
  if (bad_count != 0) {
    if constexpr (kValues)
      if (nan_on_bad)
        for (int i = threadIdx.x; i < len; i += blockDim.x) yb[i] = nan_of<T>();
    return;
  }
  TransitionStep<T, kBinary, kInit> step{quant_multiplier(s, r),     static_cast<T>(r.lo),
                                         static_cast<T>(r.hi),       static_cast<T>(r.hi - 1),
                                         T(1) / static_cast<T>(r.g), nf};
  int done = 0;
  if constexpr (std::is_same_v<T, float>) {
    if (aligned_to(wb, 16) && (!kValues || aligned_to(yb, 16)) && aligned_to(cb, 4) &&
        aligned_to(pb, 4)) {
      const int groups = len / 4;
      for (int g = threadIdx.x; g < groups; g += blockDim.x) {
        const float4 wv = reinterpret_cast<const float4*>(wb)[g];
        char4 cv = make_char4(0, 0, 0, 0), pv = make_char4(0, 0, 0, 0);
        if constexpr (!kInit) {
          cv = reinterpret_cast<const char4*>(cb)[g];
          pv = reinterpret_cast<const char4*>(pb)[g];
        }
        int8_t c0 = cv.x, c1 = cv.y, c2 = cv.z, c3 = cv.w;
        int8_t p0 = pv.x, p1 = pv.y, p2 = pv.z, p3 = pv.w;
        float4 out;
        out.x = step(wv.x, c0, p0);
        out.y = step(wv.y, c1, p1);
        out.z = step(wv.z, c2, p2);
        out.w = step(wv.w, c3, p3);
        if constexpr (kValues) reinterpret_cast<float4*>(yb)[g] = out;
        reinterpret_cast<char4*>(cb)[g] = make_char4(c0, c1, c2, c3);
        reinterpret_cast<char4*>(pb)[g] = make_char4(p0, p1, p2, p3);
      }
      done = groups * 4;
    }
  }
  for (int i = done + threadIdx.x; i < len; i += blockDim.x) {
    int8_t code = kInit ? int8_t{0} : cb[i];
    int8_t before = kInit ? int8_t{0} : pb[i];
    const T value = step(wb[i], code, before);
    if constexpr (kValues) yb[i] = value;  // y may alias w: w[i] was read above
    cb[i] = code;
    pb[i] = before;
  }
  const long long block_changed = block_sum(step.changed, smem);
  const long long block_oscillated = block_sum(step.oscillated, smem);
  const long long block_near = block_sum(step.near, smem);
  if (threadIdx.x == 0) {
    if (block_changed)
      atomicAdd(&counters[kChanged], static_cast<unsigned long long>(block_changed));
    if (block_oscillated)
      atomicAdd(&counters[kOscillated], static_cast<unsigned long long>(block_oscillated));
    if (block_near) atomicAdd(&counters[kNear], static_cast<unsigned long long>(block_near));
  }
}

template <class T, bool kInit, bool kValues>
void launch_transition(bool binary, unsigned grid, cudaStream_t stream, const T* w, const T* scale,
                       int8_t* codes, int8_t* prev, T* y, int64_t inner, const QuantRange& r, T nf,
                       unsigned long long* counters, const unsigned long long* bad,
                       bool nan_on_bad) {
  if (binary) {
    transition_kernel<T, true, kInit, kValues><<<grid, kThreads, 0, stream>>>(
        w, scale, codes, prev, y, inner, r, nf, counters, bad, nan_on_bad);
  } else {
    transition_kernel<T, false, kInit, kValues><<<grid, kThreads, 0, stream>>>(
        w, scale, codes, prev, y, inner, r, nf, counters, bad, nan_on_bad);
  }
  TRANQ_CUDA_CHECK_LAUNCH();
}

// The pass and its checks, shared by transition_launch (counts to the host) and the _into
// forms (counts into a device table): counters[0..2] receive the counts, *bad the number of
// bad scale values. Without a row, both must be zeroed on `stream` before; with one (the _into
// forms, counters inside it), start_row_kernel writes the row and *bad itself.
void launch_pass(const char* op, const Tensor& w, const Tensor& scale, const QuantRange& r,
                 const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                 double near_fraction, bool init, cudaStream_t stream, unsigned long long* counters,
                 unsigned long long* bad, bool nan_on_bad, long long* row) {
  const int64_t n = w.numel(), channels = scale.numel(), inner = n / channels;
  const unsigned grid = grid_exact(channels * quant_pieces_per_channel(inner, kCudaChunk), op);
  int8_t* pc = codes.data<int8_t>();
  int8_t* pp = prev_codes.data<int8_t>();
  dispatch_floating(w.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pw = w.data<T>();
    const T* ps = scale.data<T>();
    const T nf = static_cast<T>(near_fraction);
    if (row) {
      start_row_kernel<T><<<1, kThreads, 0, stream>>>(ps, channels, r, row, n, bad);
    } else {
      count_bad_scales_kernel<T><<<grid_for(channels), kThreads, 0, stream>>>(ps, channels, r, bad);
    }
    TRANQ_CUDA_CHECK_LAUNCH();
    if (init) {
      launch_transition<T, true, false>(r.binary_sign, grid, stream, pw, ps, pc, pp, nullptr, inner,
                                        r, nf, counters, bad, false);
    } else if (y.defined()) {
      launch_transition<T, false, true>(r.binary_sign, grid, stream, pw, ps, pc, pp, y.data<T>(),
                                        inner, r, nf, counters, bad, nan_on_bad);
    } else {
      launch_transition<T, false, false>(r.binary_sign, grid, stream, pw, ps, pc, pp, nullptr,
                                         inner, r, nf, counters, bad, false);
    }
  });
}

// The _into forms: the row is zeroed, counted into and completed on the stream; nothing waits.
void transition_into(const char* op, const Tensor& w, const Tensor& scale, const QuantRange& r,
                     const Tensor& y, const Tensor& codes, const Tensor& prev_codes,
                     double near_fraction, const Tensor& counts, int64_t row, bool init) {
  check_transition_args(op, w, scale, r, codes, prev_codes, near_fraction);
  if (y.defined()) check_fused_values(op, w, y);
  check_counts_table(op, w, counts, row);
  check_on_device(op, w.device(),
                  {{"scale", &scale},
                   {"y", &y},
                   {"codes", &codes},
                   {"prev_codes", &prev_codes},
                   {"counts", &counts}});
  const int index = w.device().index;
  DeviceGuard guard(index);
  cudaStream_t stream = current_stream(index);
  long long* prow = reinterpret_cast<long long*>(counts.data<int64_t>() + row * kCountColumns);
  // The allocator reuses a freed block only for later work on the same stream, so the scratch
  // word may be released before the kernels below have run. Two launches in all: the row's
  // start (which also writes the bad-scale count) and the pass.
  Buffer bad_buf(sizeof(unsigned long long), w.device());
  auto* bad = static_cast<unsigned long long*>(bad_buf.data());
  auto* counters = reinterpret_cast<unsigned long long*>(prow + kCountChanged);
  // NaN values on a bad scale, unless y is w itself (the latent weights must survive).
  const bool nan_on_bad = y.defined() && y.raw_data() != w.raw_data();
  launch_pass(op, w, scale, r, y, codes, prev_codes, near_fraction, init, stream, counters, bad,
              nan_on_bad, prow);
}

}  // namespace

void transition_launch_into(const char* op, const Tensor& w, const Tensor& scale,
                            const QuantRange& r, const Tensor& y, const Tensor& codes,
                            const Tensor& prev_codes, double near_fraction, const Tensor& counts,
                            int64_t row) {
  transition_into(op, w, scale, r, y, codes, prev_codes, near_fraction, counts, row, false);
}

TransitionCounts transition_launch(const char* op, const Tensor& w, const Tensor& scale,
                                   const QuantRange& r, const Tensor& y, const Tensor& codes,
                                   const Tensor& prev_codes, double near_fraction, bool init) {
  check_transition_args(op, w, scale, r, codes, prev_codes, near_fraction);
  TRANQ_CHECK(!(init && y.defined()), "{}: the first count writes no values", op);
  if (y.defined()) check_fused_values(op, w, y);  // as the CPU: shape, dtype, overlap, version
  check_on_device(op, w.device(),
                  {{"scale", &scale}, {"y", &y}, {"codes", &codes}, {"prev_codes", &prev_codes}});
  const int index = w.device().index;
  DeviceGuard guard(index);
  cudaStream_t stream = current_stream(index);
  const int64_t n = w.numel(), channels = scale.numel();
  Buffer counter_buf(kNumCounters * sizeof(unsigned long long), w.device());
  auto* counters = static_cast<unsigned long long*>(counter_buf.data());
  TRANQ_CUDA_CHECK(cudaMemsetAsync(counters, 0, kNumCounters * sizeof(unsigned long long), stream));
  launch_pass(op, w, scale, r, y, codes, prev_codes, near_fraction, init, stream, counters,
              counters + kBadScales, /*nan_on_bad=*/false, /*row=*/nullptr);
  unsigned long long host[kNumCounters] = {};
  TRANQ_CUDA_CHECK(cudaMemcpyAsync(host, counters, sizeof host, cudaMemcpyDeviceToHost, stream));
  ::tranq::cuda::note_host_wait();
  TRANQ_CUDA_CHECK(cudaStreamSynchronize(stream));
  TRANQ_CHECK(host[kBadScales] == 0,
              "{}: {} of {} scale values are zero, non-finite or too small (initialise the scale "
              "first); "
              "nothing was changed",
              op, host[kBadScales], channels);
  TransitionCounts out;
  out.numel = n;
  out.changed = static_cast<int64_t>(host[kChanged]);
  out.oscillated = static_cast<int64_t>(host[kOscillated]);
  out.near = static_cast<int64_t>(host[kNear]);
  return out;
}

TransitionCounts weight_transition_init(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction) {
  return transition_launch("weight_transition_init", w, scale, r, Tensor(), codes, prev_codes,
                           near_fraction, true);
}

TransitionCounts weight_transition_pass(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction) {
  return transition_launch("weight_transition_pass", w, scale, r, Tensor(), codes, prev_codes,
                           near_fraction, false);
}

void weight_transition_init_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row) {
  transition_into("weight_transition_init_into", w, scale, r, Tensor(), codes, prev_codes,
                  near_fraction, counts, row, true);
}

void weight_transition_pass_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row) {
  transition_into("weight_transition_pass_into", w, scale, r, Tensor(), codes, prev_codes,
                  near_fraction, counts, row, false);
}

}  // namespace tranq::kernels::cuda
