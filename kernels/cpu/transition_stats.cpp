// Reference CPU transition pass. Same piece split as kernels/cpu/quantize.cpp, so a piece's
// scale multiplier is a loop constant; counts are integers, so their OpenMP sum is exact in
// any order.
#include "kernels/transition_stats.h"

#include <cmath>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/quantize.h"

namespace tranq::kernels::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;

template <class T>
std::vector<T> multipliers(const char* op, const Tensor& scale, const QuantRange& r) {
  const T* ps = scale.data<T>();
  std::vector<T> m(static_cast<size_t>(scale.numel()));
  for (int64_t i = 0; i < scale.numel(); ++i) {
    TRANQ_CHECK(quant_scale_usable(ps[i], r),
                "{}: scale[{}] = {} must be finite and nonzero, and large enough that {} / |scale| "
                "is finite (initialise the scale first)",
                op, i, static_cast<double>(ps[i]), r.g);
    m[i] = quant_multiplier(ps[i], r);
  }
  return m;
}

struct PieceCounts {
  int64_t changed = 0, oscillated = 0, near = 0;
};

// kInit: write codes and prev_codes unconditionally, count only `near`. Branch-free with
// 32-bit per-piece counters (a piece has at most kQuantChunk elements) so the loop
// vectorises; prev_codes is rewritten with its own value where nothing changed.
template <class T, bool kBinary, bool kInit>
PieceCounts transition_loop(const T* w, int8_t* codes, int8_t* prev, int64_t b, int64_t e, T m,
                            T lo, T hi, T hi1, T nf) {
  int32_t changed = 0, oscillated = 0, near = 0;
  for (int64_t i = b; i < e; ++i) {
    const T t = w[i] * m;
    const int8_t c = static_cast<int8_t>(
        static_cast<int32_t>(kBinary ? quant_level_binary(t) : quant_level_multibit(t, lo, hi)));
    const T d = kBinary ? quant_transition_distance_binary(t)
                        : quant_transition_distance_multibit(t, lo, hi1);
    near += d < nf ? 1 : 0;
    if constexpr (kInit) {
      codes[i] = c;
      prev[i] = c;
    } else {
      const int8_t old = codes[i], before = prev[i];
      const bool moved = c != old;
      changed += moved ? 1 : 0;
      oscillated += (moved && c == before) ? 1 : 0;
      prev[i] = moved ? old : before;
      codes[i] = c;
    }
  }
  PieceCounts k;
  k.changed = changed;
  k.oscillated = oscillated;
  k.near = near;
  return k;
}

template <class T, bool kBinary, bool kInit>
TransitionCounts transition_impl(const char* op, const Tensor& w, const Tensor& scale,
                                 const QuantRange& r, const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction) {
  const std::vector<T> mult = multipliers<T>(op, scale, r);
  const T* pw = w.data<T>();
  int8_t* pc = codes.data<int8_t>();
  int8_t* pp = prev_codes.data<int8_t>();
  const int64_t n = w.numel(), inner = n / scale.numel();
  const int64_t pieces = scale.numel() * quant_pieces_per_channel(inner, kQuantChunk);
  const T lo = static_cast<T>(r.lo), hi = static_cast<T>(r.hi), hi1 = static_cast<T>(r.hi - 1);
  const T nf = static_cast<T>(near_fraction);
  int64_t changed = 0, oscillated = 0, near = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed, oscillated, near) \
    if (n > kParallelMin)
  for (int64_t j = 0; j < pieces; ++j) {
    int64_t c, b, e;
    quant_piece(j, inner, kQuantChunk, &c, &b, &e);
    const PieceCounts k =
        transition_loop<T, kBinary, kInit>(pw, pc, pp, b, e, mult[c], lo, hi, hi1, nf);
    changed += k.changed;
    oscillated += k.oscillated;
    near += k.near;
  }
  TransitionCounts out;
  out.numel = n;
  out.changed = changed;
  out.oscillated = oscillated;
  out.near = near;
  return out;
}

template <bool kInit>
TransitionCounts transition(const char* op, const Tensor& w, const Tensor& scale,
                            const QuantRange& r, const Tensor& codes, const Tensor& prev_codes,
                            double near_fraction) {
  check_transition_args(op, w, scale, r, codes, prev_codes, near_fraction);
  TransitionCounts out;
  dispatch_floating(w.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    out = r.binary_sign
              ? transition_impl<T, true, kInit>(op, w, scale, r, codes, prev_codes, near_fraction)
              : transition_impl<T, false, kInit>(op, w, scale, r, codes, prev_codes, near_fraction);
  });
  return out;
}

}  // namespace

TransitionCounts weight_transition_init(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction) {
  return transition<true>("weight_transition_init", w, scale, r, codes, prev_codes, near_fraction);
}

TransitionCounts weight_transition_pass(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                        const Tensor& codes, const Tensor& prev_codes,
                                        double near_fraction) {
  return transition<false>("weight_transition_pass", w, scale, r, codes, prev_codes, near_fraction);
}

namespace {
void store_row(const Tensor& counts, int64_t row, const TransitionCounts& c) {
  int64_t* out = counts.data<int64_t>() + row * kCountColumns;
  out[kCountNumel] = c.numel;
  out[kCountChanged] = c.changed;
  out[kCountOscillated] = c.oscillated;
  out[kCountNear] = c.near;
}
}  // namespace

// The table is checked before the pass, so a bad table leaves the codes untouched.
void weight_transition_init_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row) {
  const char* op = "weight_transition_init_into";
  check_counts_table(op, w, counts, row);
  store_row(counts, row,
            cpu::weight_transition_init(w, scale, r, codes, prev_codes, near_fraction));
}

void weight_transition_pass_into(const Tensor& w, const Tensor& scale, const QuantRange& r,
                                 const Tensor& codes, const Tensor& prev_codes,
                                 double near_fraction, const Tensor& counts, int64_t row) {
  const char* op = "weight_transition_pass_into";
  check_counts_table(op, w, counts, row);
  store_row(counts, row,
            cpu::weight_transition_pass(w, scale, r, codes, prev_codes, near_fraction));
}

}  // namespace tranq::kernels::cpu
