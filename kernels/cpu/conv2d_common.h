#pragma once
// Pieces the CPU convolution files share (kernels/cpu/conv2d*.cpp): scratch buffers, how work
// is split over threads, the padded layout. Used by those files only.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/dispatch.h"

namespace tranq::kernels::cpu::conv {

using Geom = Conv2dGeometry;

// Per-thread scratch that only grows, so steady-state training allocates nothing here.
class Scratch {
 public:
  ~Scratch() { std::free(ptr_); }
  void* get(size_t bytes) {
    if (bytes > bytes_) {
      // The old buffer goes first (no peak of both), but the size is recorded only once the
      // new one exists: after a failed allocation the next request tries again instead of
      // taking the null pointer for a buffer of the larger size. (A throw inside an OpenMP
      // region ends the process: an out-of-memory message, not a null dereference.)
      const size_t want = (std::max(bytes, bytes_ + bytes_ / 2) + 63) / 64 * 64;
      std::free(ptr_);
      ptr_ = nullptr;
      bytes_ = 0;
      ptr_ = std::aligned_alloc(64, want);
      TRANQ_CHECK_AS(Error, ptr_ != nullptr, "conv2d: out of memory for {} bytes of scratch", want);
      bytes_ = want;
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Scratch buffers by use; the weight-sized ones (packed, flipped, partial) are filled by the
// calling thread and read by all.
enum Slot { kSource, kOutput, kGradT, kPartial, kPacked, kFlipped, kSlots };

template <class T>
inline T* scratch(Slot slot, int64_t elems) {
  thread_local Scratch s[kSlots];
  return static_cast<T*>(s[slot].get(static_cast<size_t>(std::max<int64_t>(elems, 1)) * sizeof(T)));
}

// Below this many multiply-adds a convolution runs on the calling thread alone: waking the
// others would cost more than it saves.
constexpr double kParallelMinMacs = 1 << 17;

inline int usable_threads(const Geom& g) {
  const double macs = static_cast<double>(g.N) * g.O * g.P * g.K;
  if (omp_in_parallel() || macs < kParallelMinMacs) return 1;
  return omp_get_max_threads();
}

// Runs body(unit, cooperative) for units 0..n-1: spread over threads when there are enough of
// them, otherwise one after another with the threads cooperating inside each. Units write
// disjoint outputs, so handing them out dynamically keeps results reproducible while letting
// a thread on a busy core take fewer.
template <class F>
void for_units(int threads, int64_t n, F&& body) {
  if (threads == 1) {
    for (int64_t u = 0; u < n; ++u) body(u, false);
  } else if (n >= threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t u = 0; u < n; ++u) body(u, false);
  } else {
    for (int64_t u = 0; u < n; ++u) body(u, true);
  }
}

// Calls f(begin, end) on static, `align`-aligned slices of [0, n): one per thread when
// cooperative, else the whole range.
template <class F>
void split_range(int64_t n, int64_t align, bool cooperative, F&& f) {
  if (!cooperative) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t units = (n + align - 1) / align, nt = omp_get_num_threads();
    const int64_t t = omp_get_thread_num();
    const int64_t b = std::min(n, units * t / nt * align),
                  e = std::min(n, units * (t + 1) / nt * align);
    if (e > b) f(b, e);
  }
}

// ---- layouts ---------------------------------------------------------------------------------

// Cg channels of H x W into a zero-bordered Hp x Wp frame.
template <class T>
void pad_image(const Geom& g, const T* x, int64_t Hp, int64_t Wp, T* dst, bool cooperative) {
#pragma omp parallel for schedule(static) if (cooperative)
  for (int64_t c = 0; c < g.Cg; ++c) {
    const T* src = x + c * g.H * g.W;
    T* d = dst + c * Hp * Wp;
    std::fill(d, d + g.ph * Wp, T(0));
    for (int64_t h = 0; h < g.H; ++h) {  // loops, not memcpy: rows are short
      T* row = d + (g.ph + h) * Wp;
      const T* s = src + h * g.W;
      for (int64_t i = 0; i < g.pw; ++i) row[i] = T(0);
      for (int64_t i = 0; i < g.W; ++i) row[g.pw + i] = s[i];
      for (int64_t i = g.pw + g.W; i < Wp; ++i) row[i] = T(0);
    }
    std::fill(d + (g.ph + g.H) * Wp, d + Hp * Wp, T(0));
  }
}

// Offsets of the K rows (c, kh, kw) in a padded Hp x Wp image: the shifted-view trick.
inline std::vector<int64_t> shifted_offsets(const Geom& g, int64_t Hp, int64_t Wp) {
  std::vector<int64_t> off(static_cast<size_t>(g.K));
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw)
        off[(c * g.KH + kh) * g.KW + kw] = c * Hp * Wp + kh * g.dh * Wp + kw * g.dw;
  return off;
}

}  // namespace tranq::kernels::cpu::conv
