// CPU GEMM. kernels::gemm goes through Eigen, which runs single-threaded here
// (EIGEN_DONT_PARALLELIZE); large products are split into static row or column panels of c,
// one per OpenMP thread, so every element of c is computed by exactly one thread in a way that
// depends only on the shapes and thread count.
//
// The second half holds the convolution micro-kernels (cpu::detail): Eigen cannot read its
// operand rows through the offset tables that let a convolution skip im2col, and the shapes
// there (16-64 output channels) are too small for Eigen's blocking to reach full speed.
#include "kernels/gemm.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace tranq::kernels::cpu {
namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Products below this many multiply-adds are not worth waking other threads for.
constexpr double kParallelMinMacs = 1 << 18;

template <class T, class OpA, class OpB, class OutC>
void product_into(const OpA& a, const OpB& b, OutC&& c, T alpha, T beta) {
  if (beta == T(0)) {
    c.noalias() = alpha * a * b;
  } else {
    if (beta != T(1)) c *= beta;
    c.noalias() += alpha * a * b;
  }
}

// Splits [0, n) into `parts` contiguous panels whose starts are multiples of `align`.
inline void panel(int64_t n, int parts, int part, int64_t align, int64_t* begin, int64_t* len) {
  const int64_t units = (n + align - 1) / align;
  const int64_t u0 = units * part / parts, u1 = units * (part + 1) / parts;
  *begin = std::min(n, u0 * align);
  *len = std::min(n, u1 * align) - *begin;
}

template <class T, class OpA, class OpB>
void gemm_impl(const OpA& a, const OpB& b, T* pc, int64_t m, int64_t n, T alpha, T beta) {
  Eigen::Map<RowMat<T>> c(pc, m, n);
  const double macs = static_cast<double>(m) * n * a.cols();
  const int threads = omp_get_max_threads();
  if (threads == 1 || macs < kParallelMinMacs || omp_in_parallel()) {
    product_into(a, b, c, alpha, beta);
    return;
  }
  // Split the larger output dimension; 16 keeps panels aligned to AVX-512 float vectors.
  const bool by_rows = m >= n;
#pragma omp parallel num_threads(threads)
  {
    int64_t begin, len;
    panel(by_rows ? m : n, omp_get_num_threads(), omp_get_thread_num(), 16, &begin, &len);
    if (len > 0) {
      if (by_rows) {
        product_into(a.middleRows(begin, len), b, c.middleRows(begin, len), alpha, beta);
      } else {
        product_into(a, b.middleCols(begin, len), c.middleCols(begin, len), alpha, beta);
      }
    }
  }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c, ComputePrecision precision) {
  check_defined(a, "gemm", "a");
  check_defined(b, "gemm", "b");
  check_defined(c, "gemm", "c");
  if (precision == ComputePrecision::bf16) {
    // bf16 autocast is defined as the fp32 GEMM of the rounded operands: a bf16 product is
    // exact in f32, so only the rounding differs from fp32.
    check_bf16_dtypes("gemm", {&a, &b, &c});
    TRANQ_CHECK(!c.storage() || (c.storage() != a.storage() && c.storage() != b.storage()),
                "gemm: c must not share memory with a or b");
    return cpu::gemm(trans_a, trans_b, alpha, bf16_rounded_copy(a, "gemm", "a"),
                     bf16_rounded_copy(b, "gemm", "b"), beta, c, ComputePrecision::fp32);
  }
  TRANQ_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2,
              "gemm: expected 2-D tensors, got a {}, b {}, c {}", tensor_str(a), tensor_str(b),
              tensor_str(c));
  TRANQ_CHECK(a.dtype() == c.dtype() && b.dtype() == c.dtype(),
              "gemm: dtypes differ: a {}, b {}, c {}; convert them to one dtype first",
              tensor_str(a), tensor_str(b), tensor_str(c));
  TRANQ_CHECK(a.device() == c.device() && b.device() == c.device(),
              "gemm: tensors on different devices: a {}, b {}, c {}", tensor_str(a), tensor_str(b),
              tensor_str(c));
  TRANQ_CHECK(a.is_contiguous() && b.is_contiguous() && c.is_contiguous(),
              "gemm: needs contiguous tensors; call contiguous() first");
  const int64_t m = trans_a ? a.size(1) : a.size(0);
  const int64_t k = trans_a ? a.size(0) : a.size(1);
  const int64_t kb = trans_b ? b.size(1) : b.size(0);
  const int64_t n = trans_b ? b.size(0) : b.size(1);
  TRANQ_CHECK(k == kb, "gemm: inner dimensions differ: op(a) is [{}, {}], op(b) is [{}, {}]", m, k,
              kb, n);
  TRANQ_CHECK(c.size(0) == m && c.size(1) == n, "gemm: c is {}, expected [{}, {}]", tensor_str(c),
              m, n);
  TRANQ_CHECK(!c.storage() || (c.storage() != a.storage() && c.storage() != b.storage()),
              "gemm: c must not share memory with a or b");
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0) {  // BLAS: a and b are not read, so their NaNs do not reach c
    if (beta == 0.0) {
      c.zero_();
    } else if (beta != 1.0) {
      scale(c, beta, c);
    }
    return;
  }
  dispatch_floating(c.dtype(), "gemm", [&](auto tag) {
    using T = decltype(tag);
    Eigen::Map<const RowMat<T>> ma(a.data<T>(), a.size(0), a.size(1));
    Eigen::Map<const RowMat<T>> mb(b.data<T>(), b.size(0), b.size(1));
    T* pc = c.data<T>();
    const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
    if (!trans_a && !trans_b) gemm_impl<T>(ma, mb, pc, m, n, al, be);
    if (!trans_a && trans_b) gemm_impl<T>(ma, mb.transpose(), pc, m, n, al, be);
    if (trans_a && !trans_b) gemm_impl<T>(ma.transpose(), mb, pc, m, n, al, be);
    if (trans_a && trans_b) gemm_impl<T>(ma.transpose(), mb.transpose(), pc, m, n, al, be);
  });
}

// ---- micro-kernels for convolutions -------------------------------------------------------
// Written with GCC/Clang vector extensions, so the compiler emits full-width FMAs for the
// target (-march=native) without intrinsics; tiles are sized for the register file.
namespace detail {
namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;  // 32 vector registers
constexpr int kGemmRows = 8;
#else
constexpr int kVecBytes = 32;  // AVX2 and others: 16 registers, so smaller tiles
constexpr int kGemmRows = 4;
#endif
constexpr int kGemmVecs = 3;

template <class T>
struct VecOf {
  typedef T type __attribute__((vector_size(kVecBytes)));
};
template <class T>
using Vec = typename VecOf<T>::type;
template <class T>
constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));

template <class T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof v);
}

template <class T>
struct HalfVecOf {
  typedef T type __attribute__((vector_size(kVecBytes / 2)));
};
template <class T, size_t... I>
inline Vec<T> concat(const typename HalfVecOf<T>::type& lo, const typename HalfVecOf<T>::type& hi,
                     std::index_sequence<I...>) {
  return __builtin_shufflevector(lo, hi, static_cast<int>(I)...);
}

// One MR x (NV vectors) tile of C over the full depth k: A values broadcast from the packed
// panel, B rows loaded as vectors. Vector v of the tile reads B row kk at b + off[kk] + bcol[v]
// (or b + kk*ldb + bcol[v] without offsets) and is stored at c + ccol[v]. With kSplit, the upper
// half of vector v is read from bcol2[v] instead (a vector spanning two short rows).
template <class T, int MR, int NV, bool kOffsets, bool kSplit = false>
void gemm_tile(int64_t k, const T* ap, const T* b, const int64_t* off, int64_t ldb,
               const int64_t* bcol, const int64_t* bcol2, const T* bias, T* c, int64_t ldc,
               const int64_t* ccol, int64_t mvalid) {
  constexpr int L = kLanes<T>;
  using Half = typename HalfVecOf<T>::type;
  Vec<T> acc[MR][NV];
  for (int m = 0; m < MR; ++m) {
    const T b0 = (bias && m < mvalid) ? bias[m] : T(0);
    for (int v = 0; v < NV; ++v) acc[m][v] = Vec<T>{} + b0;
  }
  int64_t bc[NV], bc2[NV];
  for (int v = 0; v < NV; ++v) bc[v] = bcol[v], bc2[v] = kSplit ? bcol2[v] : 0;
  for (int64_t kk = 0; kk < k; ++kk) {
    const T* bk = b + (kOffsets ? off[kk] : kk * ldb);
    Vec<T> bv[NV];
    for (int v = 0; v < NV; ++v) {
      if constexpr (kSplit) {
        Half lo, hi;
        std::memcpy(&lo, bk + bc[v], sizeof lo);
        std::memcpy(&hi, bk + bc2[v], sizeof hi);
        bv[v] = concat<T>(lo, hi, std::make_index_sequence<L>{});
      } else {
        bv[v] = load(bk + bc[v]);
      }
    }
    const T* a = ap + kk * MR;
    for (int m = 0; m < MR; ++m) {
      const T am = a[m];
      for (int v = 0; v < NV; ++v) acc[m][v] += am * bv[v];
    }
  }
  for (int m = 0; m < MR; ++m) {
    if (m >= mvalid) break;
    for (int v = 0; v < NV; ++v) store(c + m * ldc + ccol[v], acc[m][v]);
  }
}

// Thread-private buffer for the column tail of gemm_packed_a.
template <class T>
T* tail_buffer(size_t elems) {
  thread_local std::vector<T> buf;
  if (buf.size() < elems) buf.resize(elems);
  return buf.data();
}

// A [R*KW rows, NV vectors] tile of the weight gradient, accumulated into c.
template <class T, int R, int KW, int NV>
void wgrad_tile(const T* const* base, int64_t tap_stride, int64_t rows, int64_t row_stride,
                int64_t col_stride, int64_t row_len, const T* g, int64_t ldg, T* c) {
  constexpr int L = kLanes<T>;
  Vec<T> acc[R * KW][NV];
  for (int m = 0; m < R * KW; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = load(c + m * ldg + v * L);
  for (int64_t r = 0; r < rows; ++r) {
    const T* p[R];
    for (int i = 0; i < R; ++i) p[i] = base[i] + r * row_stride;
    const T* gr = g + r * row_len * ldg;
    for (int64_t j = 0; j < row_len; ++j) {
      Vec<T> gv[NV];
      for (int v = 0; v < NV; ++v) gv[v] = load(gr + j * ldg + v * L);
      const int64_t col = j * col_stride;
      for (int i = 0; i < R; ++i) {
        for (int t = 0; t < KW; ++t) {
          const T a = p[i][col + t * tap_stride];
          for (int v = 0; v < NV; ++v) acc[i * KW + t][v] += a * gv[v];
        }
      }
    }
  }
  for (int m = 0; m < R * KW; ++m)
    for (int v = 0; v < NV; ++v) store(c + m * ldg + v * L, acc[m][v]);
}

// Vectors per weight-gradient tile for a padded width ldg (the largest of 4, 3, 2, 1 dividing it).
template <class T>
int wgrad_vecs(int64_t ldg) {
  const int64_t nv = ldg / kLanes<T>;
  for (int v : {4, 3, 2}) {
    if (nv % v == 0) return v;
  }
  return 1;
}

// Rows (R, the groups of taps) per tile for each vector count, sized to the register file.
constexpr int kWideR3[5] = {0, 6, 3, 2, 2}, kWideR1[5] = {0, 8, 8, 8, 6};
constexpr int kNarrowR3[5] = {0, 4, 2, 1, 1}, kNarrowR1[5] = {0, 8, 6, 4, 3};
constexpr int group_rows(int taps, int nv) {
  return kVecBytes == 64 ? (taps == 3 ? kWideR3[nv] : kWideR1[nv])
                         : (taps == 3 ? kNarrowR3[nv] : kNarrowR1[nv]);
}

template <class T, int KW, int NV>
void wgrad_run(const T* a, const int64_t* off, int64_t k_begin, int64_t k_end, int64_t tap_stride,
               int64_t rows, int64_t row_stride, int64_t col_stride, int64_t row_len, const T* g,
               int64_t ldg, T* c) {
  constexpr int R = group_rows(KW, NV), L = kLanes<T>;
  const int64_t last = k_end - KW;  // first row of the last valid group
  for (int64_t o = 0; o < ldg; o += NV * L) {
    for (int64_t k0 = k_begin; k0 < k_end; k0 += R * KW) {
      const T* base[R];
      for (int i = 0; i < R; ++i) base[i] = a + off[std::min(k0 + i * KW, last)];
      wgrad_tile<T, R, KW, NV>(base, tap_stride, rows, row_stride, col_stride, row_len, g + o, ldg,
                               c + k0 * ldg + o);
    }
  }
}

// In-register transpose of an L x L block: log2(L) stages, the stage at distance D swapping
// the off-diagonal D x D sub-blocks of every 2D x 2D block.
template <int L, int D, bool kHigh>
constexpr int transpose_lane(int j) {
  return kHigh ? ((j & D) == 0 ? j + D : j + L) : ((j & D) == 0 ? j : j - D + L);
}
template <class V, int L, int D, bool kHigh, size_t... J>
inline V transpose_shuffle(const V& a, const V& b, std::index_sequence<J...>) {
  return __builtin_shufflevector(a, b, transpose_lane<L, D, kHigh>(static_cast<int>(J))...);
}
template <class V, int L, int D>
inline void transpose_stage(V* r) {
  if constexpr (D >= 1) {
    for (int i = 0; i < L; ++i) {
      if ((i & D) != 0) continue;
      const V lo = transpose_shuffle<V, L, D, false>(r[i], r[i + D], std::make_index_sequence<L>{});
      const V hi = transpose_shuffle<V, L, D, true>(r[i], r[i + D], std::make_index_sequence<L>{});
      r[i] = lo;
      r[i + D] = hi;
    }
    transpose_stage<V, L, D / 2>(r);
  }
}

// e0 o0 e1 o1 ... from the lower halves of (e, o), or from the upper halves.
template <int L, bool kHigh>
constexpr int interleave_lane(int j) {
  return (j % 2 == 0 ? 0 : L) + (kHigh ? L / 2 : 0) + j / 2;
}
template <class V, int L, bool kHigh, size_t... J>
inline V interleave_shuffle(const V& a, const V& b, std::index_sequence<J...>) {
  return __builtin_shufflevector(a, b, interleave_lane<L, kHigh>(static_cast<int>(J))...);
}

}  // namespace

template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t lds, T* dst, int64_t ldd) {
  constexpr int L = kLanes<T>;
  const int64_t rb = rows / L * L, cb = cols / L * L;
  for (int64_t i = 0; i < rb; i += L) {
    for (int64_t j = 0; j < cb; j += L) {
      Vec<T> r[L];
      for (int k = 0; k < L; ++k) r[k] = load(src + (i + k) * lds + j);
      transpose_stage<Vec<T>, L, L / 2>(r);
      for (int k = 0; k < L; ++k) store(dst + (j + k) * ldd + i, r[k]);
    }
  }
  for (int64_t i = 0; i < rows; ++i) {  // the ragged edges
    for (int64_t j = i < rb ? cb : 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
  }
}

template <class T>
void interleave2(const T* even, const T* odd, int64_t n, T* dst) {
  constexpr int L = kLanes<T>;
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    const Vec<T> e = load(even + j), o = load(odd + j);
    store(dst + 2 * j, interleave_shuffle<Vec<T>, L, false>(e, o, std::make_index_sequence<L>{}));
    store(dst + 2 * j + L,
          interleave_shuffle<Vec<T>, L, true>(e, o, std::make_index_sequence<L>{}));
  }
  for (; j < n; ++j) dst[2 * j] = even[j], dst[2 * j + 1] = odd[j];
}

template <class T>
int64_t packed_a_size(int64_t m, int64_t k) {
  return (m + kGemmRows - 1) / kGemmRows * kGemmRows * k;
}

template <class T>
void pack_a(const T* a, int64_t rs, int64_t cs, int64_t m, int64_t k, T* packed) {
  for (int64_t i0 = 0; i0 < m; i0 += kGemmRows) {
    T* panel = packed + i0 * k;
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int64_t i = 0; i < kGemmRows; ++i) {
        panel[kk * kGemmRows + i] = i0 + i < m ? a[(i0 + i) * rs + kk * cs] : T(0);
      }
    }
  }
}

template <class T>
int64_t gemm_vec_cols() {
  return kLanes<T>;
}

template <class T>
void gemm_packed_a(const T* packed, int64_t m, int64_t k, const T* b, const int64_t* off, T* c,
                   int64_t ldc, const T* bias, int64_t j_begin, int64_t j_end, ColumnRows rows) {
  constexpr int MR = kGemmRows, L = kLanes<T>;
  auto b_col = [&](int64_t j) { return j / rows.row_len * rows.b_stride + j % rows.row_len; };
  auto c_col = [&](int64_t j) { return j / rows.row_len * rows.c_stride + j % rows.row_len; };
  // Rows of half a vector: each vector covers two rows, its halves loaded separately.
  const bool split = rows.row_len * 2 == L && rows.b_stride != rows.row_len;
  auto tiles = [&](auto nv_tag, int64_t j) {
    constexpr int NV = decltype(nv_tag)::value;
    int64_t bcol[NV], bcol2[NV], ccol[NV];
    for (int v = 0; v < NV; ++v) {
      bcol[v] = b_col(j + v * L), bcol2[v] = b_col(j + v * L + L / 2), ccol[v] = c_col(j + v * L);
    }
    for (int64_t i = 0; i < m; i += MR) {
      const T* bi = bias ? bias + i : nullptr;
      const int64_t mv = std::min<int64_t>(MR, m - i);
      if (split) {
        gemm_tile<T, MR, NV, true, true>(k, packed + i * k, b, off, 0, bcol, bcol2, bi, c + i * ldc,
                                         ldc, ccol, mv);
      } else {
        gemm_tile<T, MR, NV, true>(k, packed + i * k, b, off, 0, bcol, nullptr, bi, c + i * ldc,
                                   ldc, ccol, mv);
      }
    }
  };
  // Whole vectors in tiles of 3, ending on 2+2 or 2 rather than a lone, load-bound 1.
  const int64_t nvec = (j_end - j_begin) / L;
  int64_t threes = nvec / kGemmVecs, rem = nvec % kGemmVecs, j = j_begin;
  if (rem == 1 && threes > 0) --threes, rem = 4;
  for (int64_t t = 0; t < threes; ++t, j += kGemmVecs * L) {
    tiles(std::integral_constant<int, kGemmVecs>{}, j);
  }
  for (; rem >= 2; rem -= 2, j += 2 * L) tiles(std::integral_constant<int, 2>{}, j);
  if (rem == 1) tiles(std::integral_constant<int, 1>{}, j), j += L;
  if (j == j_end) return;
  // The last partial vector (single-row layouts only): copy those columns of B into a
  // zero-padded panel and compute a whole vector into a buffer, so nothing reads past j_end.
  const int64_t rest = j_end - j;
  T* tb = tail_buffer<T>(static_cast<size_t>(k * L + MR * L));
  T* tc = tb + k * L;
  for (int64_t kk = 0; kk < k; ++kk) {
    std::memcpy(tb + kk * L, b + off[kk] + b_col(j), sizeof(T) * rest);
    std::fill(tb + kk * L + rest, tb + (kk + 1) * L, T(0));
  }
  const int64_t zero = 0;
  for (int64_t i = 0; i < m; i += MR) {
    const int64_t mv = std::min<int64_t>(MR, m - i);
    gemm_tile<T, MR, 1, false>(k, packed + i * k, tb, nullptr, L, &zero, nullptr,
                               bias ? bias + i : nullptr, tc, L, &zero, mv);
    for (int64_t r = 0; r < mv; ++r) {
      std::memcpy(c + (i + r) * ldc + c_col(j), tc + r * L, sizeof(T) * rest);
    }
  }
}

template <class T>
int64_t padded_ld(int64_t o) {
  return (o + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
}

template <class T>
int64_t wgrad_tile_rows(int taps, int64_t ldg) {
  const int kw = taps == 3 ? 3 : 1;
  return group_rows(kw, wgrad_vecs<T>(ldg)) * kw;
}

template <class T>
int64_t wgrad_rows(int64_t k, int taps, int64_t ldg) {
  const int64_t t = wgrad_tile_rows<T>(taps, ldg);
  return (k + t - 1) / t * t;
}

template <class T>
void wgrad_accumulate(const T* a, const int64_t* off, int64_t k_begin, int64_t k_end, int taps,
                      int64_t tap_stride, int64_t rows, int64_t row_stride, int64_t col_stride,
                      int64_t row_len, const T* g, int64_t ldg, T* c) {
  if (k_end <= k_begin) return;
  auto run = [&](auto kw_tag, auto nv_tag) {
    wgrad_run<T, decltype(kw_tag)::value, decltype(nv_tag)::value>(
        a, off, k_begin, k_end, tap_stride, rows, row_stride, col_stride, row_len, g, ldg, c);
  };
  using K1 = std::integral_constant<int, 1>;
  using K3 = std::integral_constant<int, 3>;
  auto with_nv = [&](auto kw_tag) {
    switch (wgrad_vecs<T>(ldg)) {
      case 4:
        return run(kw_tag, std::integral_constant<int, 4>{});
      case 3:
        return run(kw_tag, std::integral_constant<int, 3>{});
      case 2:
        return run(kw_tag, std::integral_constant<int, 2>{});
      default:
        return run(kw_tag, std::integral_constant<int, 1>{});
    }
  };
  if (taps == 3) {
    with_nv(K3{});
  } else {
    with_nv(K1{});
  }
}

#define TRANQ_INSTANTIATE_CONV_GEMM(T)                                                          \
  template int64_t packed_a_size<T>(int64_t, int64_t);                                          \
  template void pack_a<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*);                    \
  template int64_t gemm_vec_cols<T>();                                                          \
  template void gemm_packed_a<T>(const T*, int64_t, int64_t, const T*, const int64_t*, T*,      \
                                 int64_t, const T*, int64_t, int64_t, ColumnRows);              \
  template int64_t padded_ld<T>(int64_t);                                                       \
  template int64_t wgrad_tile_rows<T>(int, int64_t);                                            \
  template int64_t wgrad_rows<T>(int64_t, int, int64_t);                                        \
  template void wgrad_accumulate<T>(const T*, const int64_t*, int64_t, int64_t, int, int64_t,   \
                                    int64_t, int64_t, int64_t, int64_t, const T*, int64_t, T*); \
  template void transpose<T>(const T*, int64_t, int64_t, int64_t, T*, int64_t);                 \
  template void interleave2<T>(const T*, const T*, int64_t, T*);
TRANQ_INSTANTIATE_CONV_GEMM(float)
TRANQ_INSTANTIATE_CONV_GEMM(double)
#undef TRANQ_INSTANTIATE_CONV_GEMM

}  // namespace detail
}  // namespace tranq::kernels::cpu
