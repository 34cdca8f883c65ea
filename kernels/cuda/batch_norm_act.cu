// CUDA batch norm (+ residual + ReLU), following kernels/cpu/batch_norm_act.cpp and
// kernels/cpu/batch_norm_common.h. x is viewed as [N, C, inner].
//
// Forward: the statistics are sums of x - x[c,0,0] and its square in double, in two kernels:
// each channel's N*inner values are cut into `pieces` fixed ranges (a function of the shape
// alone), one block per (channel, range) sums its range (each thread a fixed strided subset,
// then block_sum's fixed tree); then one block per channel adds its ranges' sums in a fixed
// tree, updates the running statistics with PyTorch's momentum rule (unbiased variance) and
// stores the mean, 1/sqrt(var + eps) and the per-channel scale. An elementwise kernel writes y.
// Backward: the same two stages sum dz and dz * (x - mean) (dz = dy masked by y > 0 with ReLU,
// stored to dresidual when asked) and store dweight, dbias and dx's three coefficients; an
// elementwise kernel writes dx. Cutting a channel into ranges keeps every SM busy when there
// are few channels and many values each (64 channels of 256*56*56 in a ResNet-18). No atomics:
// the same bits on every run. Per-element and per-channel arithmetic is the CPU's expression,
// each operation rounded on its own; the sums run in another order than the CPU's, so results
// agree to rounding. Index arithmetic is 32-bit (kernels/int_div.h) when x has fewer than 2^31
// elements, 64-bit otherwise.
#include <algorithm>

#include "kernels/batch_norm.h"
#include "kernels/batch_norm_act.h"
#include "kernels/cuda/batch_norm_common.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/int_div.h"

namespace tranq::kernels::cuda {
namespace bn {
namespace {

using ::tranq::cuda::add_rn;
using ::tranq::cuda::block_sum;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::div_rn;
using ::tranq::cuda::grid_exact;
using ::tranq::cuda::grid_for;
using ::tranq::cuda::kThreads;
using ::tranq::cuda::mul_rn;
using ::tranq::cuda::sqrt_rn;

// x viewed as [n, c, inner]: channel c is n runs of `inner` contiguous values. Layout64 divides
// in 64 bits; Layout32 (x.numel() < 2^31) by multiply-high (IntDiv).
struct Layout64 {
  int64_t n, c, inner;
  __host__ __device__ int64_t count() const { return n * inner; }
  // Flat index of the j-th value (j < count) of channel ch.
  __device__ int64_t at(int64_t ch, int64_t j) const {
    const int64_t o = j / inner;
    return (o * c + ch) * inner + (j - o * inner);
  }
  __device__ int64_t channel_of(int64_t i) const { return (i / inner) % c; }
};

struct Layout32 {
  int64_t n, c, inner;
  IntDiv by_inner, by_c;
  __host__ __device__ int64_t count() const { return n * inner; }
  __device__ int64_t at(int64_t ch, int64_t j) const {
    const uint32_t jj = static_cast<uint32_t>(j);
    const uint32_t o = by_inner.div(jj);
    const uint32_t k = jj - o * static_cast<uint32_t>(inner);
    return static_cast<int64_t>((o * static_cast<uint32_t>(c) + static_cast<uint32_t>(ch)) *
                                    static_cast<uint32_t>(inner) +
                                k);
  }
  __device__ int64_t channel_of(int64_t i) const {
    return by_c.mod(by_inner.div(static_cast<uint32_t>(i)));
  }
};

// Argument checks: kernels/batch_norm.h, shared with the CPU.
Layout64 layout_of(const BnLayout& b) {
  return Layout64{b.n, b.c, b.inner};
}

bool fits_32(const Layout64& l) {
  return l.n * l.c * l.inner < (int64_t{1} << 31) && l.c > 0 && l.inner > 0;
}

Layout32 layout_32(const Layout64& l) {
  return Layout32{l.n, l.c, l.inner, IntDiv(static_cast<uint32_t>(l.inner)),
                  IntDiv(static_cast<uint32_t>(l.c))};
}

// Ranges per channel for the sums: about kSumChunk values per block, at most kMaxPieces; a
// function of the shape alone, so the summation order is too.
constexpr int64_t kSumChunk = 8192, kMaxPieces = 1024;
int64_t sum_pieces(int64_t count) {
  return std::max<int64_t>(1, std::min<int64_t>(kMaxPieces, (count + kSumChunk - 1) / kSumChunk));
}

// The range [b, e) of piece p of a channel's count values.
__device__ inline void piece_range(int64_t count, int64_t pieces, int64_t p, int64_t* b,
                                   int64_t* e) {
  const int64_t per = (count + pieces - 1) / pieces;
  const int64_t begin = p * per;
  *b = begin < count ? begin : count;
  *e = count - *b < per ? count : *b + per;
}

// ---- kernels -----------------------------------------------------------------------------------

// Block c * pieces + p: sums of d = x - x[c,0,0] and d^2 over piece p of channel c, into
// partial[2 * block], partial[2 * block + 1].
template <class T, class L>
__global__ void stats_partial_kernel(const T* x, L l, int64_t pieces, double* partial) {
  __shared__ double smem[kThreads];
  const int64_t c = blockIdx.x / pieces, p = blockIdx.x - c * pieces;
  int64_t b, e;
  piece_range(l.count(), pieces, p, &b, &e);
  const double shift = static_cast<double>(x[l.at(c, 0)]);
  double s1 = 0, s2 = 0;
  for (int64_t j = b + threadIdx.x; j < e; j += blockDim.x) {
    const double d = static_cast<double>(x[l.at(c, j)]) - shift;
    s1 += d;
    s2 += d * d;
  }
  s1 = block_sum(s1, smem);
  s2 = block_sum(s2, smem);
  if (threadIdx.x == 0) {
    partial[2 * blockIdx.x] = s1;
    partial[2 * blockIdx.x + 1] = s2;
  }
}

// Block c: channel c's two sums from its pieces' (thread q takes pieces q, q + blockDim.x, ...,
// then block_sum's tree), returned to every thread.
__device__ inline void add_pieces(const double* partial, int64_t c, int64_t pieces, double* smem,
                                  double* s1, double* s2) {
  double a1 = 0, a2 = 0;
  for (int64_t q = threadIdx.x; q < pieces; q += blockDim.x) {
    a1 += partial[2 * (c * pieces + q)];
    a2 += partial[2 * (c * pieces + q) + 1];
  }
  *s1 = block_sum(a1, smem);
  *s2 = block_sum(a2, smem);
}

// Block c: the statistics channel c is normalised with (see channel_stats on the CPU), and
// scale[c] = weight[c] * invstd (invstd without weight), rounded to T from double. With batch
// statistics, from the pieces' sums of stats_partial_kernel.
template <class T, class L>
__global__ void stats_kernel(const T* x, L l, const double* partial, int64_t pieces, bool use_batch,
                             double momentum, double eps, const T* weight, T* running_mean,
                             T* running_var, T* save_mean, T* save_invstd, T* scale) {
  __shared__ double smem[kThreads];
  const int64_t c = blockIdx.x;
  double mean = 0, invstd = 0;
  if (use_batch) {
    double s1, s2;
    add_pieces(partial, c, pieces, smem, &s1, &s2);
    if (threadIdx.x != 0) return;
    const double shift = static_cast<double>(x[l.at(c, 0)]);
    const double n = static_cast<double>(l.count());
    const double dmean = div_rn(s1, n);
    double var = add_rn(div_rn(s2, n), -mul_rn(dmean, dmean));  // biased
    var = 0.0 < var ? var : 0.0;                                // std::max(0.0, var)
    mean = add_rn(shift, dmean);
    invstd = div_rn(1.0, sqrt_rn(add_rn(var, eps)));
    if (running_mean) {
      const double keep = 1.0 - momentum;
      running_mean[c] = static_cast<T>(
          add_rn(mul_rn(keep, static_cast<double>(running_mean[c])), mul_rn(momentum, mean)));
      const double unbiased = div_rn(mul_rn(mul_rn(momentum, var), n), n - 1.0);
      running_var[c] =
          static_cast<T>(add_rn(mul_rn(keep, static_cast<double>(running_var[c])), unbiased));
    }
  } else {
    if (threadIdx.x != 0) return;
    mean = static_cast<double>(running_mean[c]);
    invstd = div_rn(1.0, sqrt_rn(add_rn(static_cast<double>(running_var[c]), eps)));
  }
  save_mean[c] = static_cast<T>(mean);
  save_invstd[c] = static_cast<T>(invstd);
  scale[c] = static_cast<T>(weight ? mul_rn(static_cast<double>(weight[c]), invstd) : invstd);
}

// y = act((x - mean) * scale + bias [+ residual]), rounded as the CPU's write_run.
template <class T, bool kRelu, class L>
__global__ void write_kernel(const T* x, const T* residual, T* y, L l, const T* mean,
                             const T* scale, const T* bias, int64_t total) {
  TRANQ_GRID_STRIDE_LOOP(i, total) {
    const int64_t c = l.channel_of(i);
    T z = mul_rn(add_rn(x[i], -mean[c]), scale[c]);
    z = add_rn(z, bias ? bias[c] : T(0));
    if (residual) z = add_rn(z, residual[i]);
    y[i] = kRelu ? (z <= T(0) ? T(0) : z) : z;  // NaN stays NaN, as on the CPU
  }
}

// Block c * pieces + p: sdy = sum dz, sdyx = sum dz * (x - mean) over piece p of channel c,
// into partial[2 * block], partial[2 * block + 1]; dz (= relu ? dy * (y > 0) : dy) stored to
// dres when given.
template <class T, class L>
__global__ void grad_partial_kernel(const T* x, const T* y, const T* dy, T* dres, bool relu, L l,
                                    int64_t pieces, const T* save_mean, double* partial) {
  __shared__ double smem[kThreads];
  const int64_t c = blockIdx.x / pieces, p = blockIdx.x - c * pieces;
  int64_t b, e;
  piece_range(l.count(), pieces, p, &b, &e);
  const double mean = static_cast<double>(save_mean[c]);
  double sdy = 0, sdyx = 0;
  for (int64_t j = b + threadIdx.x; j < e; j += blockDim.x) {
    const int64_t i = l.at(c, j);
    T g = dy[i];
    if (relu) g = y[i] > T(0) ? g : T(0);
    if (dres) dres[i] = g;
    const double gd = static_cast<double>(g);
    sdy += gd;
    sdyx += gd * (static_cast<double>(x[i]) - mean);
  }
  sdy = block_sum(sdy, smem);
  sdyx = block_sum(sdyx, smem);
  if (threadIdx.x == 0) {
    partial[2 * blockIdx.x] = sdy;
    partial[2 * blockIdx.x + 1] = sdyx;
  }
}

// Block c: channel c's sdy and sdyx from its pieces; thread 0 writes dweight, dbias and
// coef[3c..3c+2] = (k, b, k0) of dx = k*dz + b*(x - mean) + k0 (the CPU's expressions).
template <class T>
__global__ void grad_coef_kernel(const double* partial, int64_t pieces, int64_t count,
                                 const T* save_invstd, const T* weight, bool use_batch, T* dweight,
                                 T* dbias, T* coef) {
  __shared__ double smem[kThreads];
  const int64_t c = blockIdx.x;
  double sdy, sdyx;
  add_pieces(partial, c, pieces, smem, &sdy, &sdyx);
  if (threadIdx.x != 0) return;
  const double invstd = static_cast<double>(save_invstd[c]);
  if (dweight) dweight[c] = static_cast<T>(mul_rn(sdyx, invstd));
  if (dbias) dbias[c] = static_cast<T>(sdy);
  const double n = static_cast<double>(count);
  const double k = weight ? mul_rn(static_cast<double>(weight[c]), invstd) : invstd;
  const double b = use_batch ? div_rn(mul_rn(mul_rn(mul_rn(-k, invstd), invstd), sdyx), n) : 0.0;
  const double k0 = use_batch ? div_rn(mul_rn(-k, sdy), n) : 0.0;
  coef[3 * c] = static_cast<T>(k);
  coef[3 * c + 1] = static_cast<T>(b);
  coef[3 * c + 2] = static_cast<T>(k0);
}

// dx = k*dz + b*(x - mean) + k0, dz read from dres when stored there.
template <class T, class L>
__global__ void dx_kernel(const T* x, const T* y, const T* dy, const T* dres, bool relu, L l,
                          const T* save_mean, const T* coef, T* dx, int64_t total) {
  TRANQ_GRID_STRIDE_LOOP(i, total) {
    const int64_t c = l.channel_of(i);
    T z;
    if (dres) {
      z = dres[i];
    } else {
      z = dy[i];
      if (relu) z = y[i] > T(0) ? z : T(0);
    }
    const T t =
        add_rn(mul_rn(coef[3 * c], z), mul_rn(coef[3 * c + 1], add_rn(x[i], -save_mean[c])));
    dx[i] = add_rn(t, coef[3 * c + 2]);
  }
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Launches the forward's kernels with layout L.
template <class T, class L>
void forward_with(const char* op, L l, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                  double momentum, double eps, const Tensor& residual, bool relu, const Tensor& y,
                  const Tensor& save_mean, const Tensor& save_invstd, cudaStream_t stream) {
  Buffer scale_buf = scratch_buffer(static_cast<size_t>(l.c) * sizeof(T), x.device());
  T* scale = static_cast<T*>(scale_buf.data());
  const int64_t pieces = use_batch_stats ? sum_pieces(l.count()) : 0;
  Buffer partial_buf =
      scratch_buffer(static_cast<size_t>(2 * l.c * pieces) * sizeof(double), x.device());
  double* partial = static_cast<double*>(partial_buf.data());
  if (use_batch_stats) {
    stats_partial_kernel<T, L>
        <<<grid_exact(l.c * pieces, op), kThreads, 0, stream>>>(x.data<T>(), l, pieces, partial);
    TRANQ_CUDA_CHECK_LAUNCH();
  }
  stats_kernel<T, L><<<grid_exact(l.c, op), kThreads, 0, stream>>>(
      x.data<T>(), l, partial, pieces, use_batch_stats, momentum, eps, ptr_or_null<T>(weight),
      ptr_or_null<T>(running_mean), ptr_or_null<T>(running_var), save_mean.data<T>(),
      save_invstd.data<T>(), scale);
  TRANQ_CUDA_CHECK_LAUNCH();
  const int64_t total = x.numel();
  if (total == 0) return;
  if (relu) {
    write_kernel<T, true, L><<<grid_for(total), kThreads, 0, stream>>>(
        x.data<T>(), ptr_or_null<T>(residual), y.data<T>(), l, save_mean.data<T>(), scale,
        ptr_or_null<T>(bias), total);
  } else {
    write_kernel<T, false, L><<<grid_for(total), kThreads, 0, stream>>>(
        x.data<T>(), ptr_or_null<T>(residual), y.data<T>(), l, save_mean.data<T>(), scale,
        ptr_or_null<T>(bias), total);
  }
  TRANQ_CUDA_CHECK_LAUNCH();
}

// Launches the backward's kernels with layout L.
template <class T, class L>
void backward_with(const char* op, L l, const Tensor& x, const Tensor& y, const Tensor& dy,
                   const Tensor& weight, const Tensor& save_mean, const Tensor& save_invstd,
                   bool use_batch_stats, bool relu, const Tensor& dx, const Tensor& dresidual,
                   const Tensor& dweight, const Tensor& dbias, cudaStream_t stream) {
  Buffer coef_buf = scratch_buffer(static_cast<size_t>(3 * l.c) * sizeof(T), x.device());
  T* coef = static_cast<T*>(coef_buf.data());
  const int64_t pieces = sum_pieces(l.count());
  Buffer partial_buf =
      scratch_buffer(static_cast<size_t>(2 * l.c * pieces) * sizeof(double), x.device());
  double* partial = static_cast<double*>(partial_buf.data());
  const T* py = relu ? y.data<T>() : nullptr;
  T* pdr = ptr_or_null<T>(dresidual);
  grad_partial_kernel<T, L><<<grid_exact(l.c * pieces, op), kThreads, 0, stream>>>(
      x.data<T>(), py, dy.data<T>(), pdr, relu, l, pieces, save_mean.data<T>(), partial);
  TRANQ_CUDA_CHECK_LAUNCH();
  grad_coef_kernel<T><<<grid_exact(l.c, op), kThreads, 0, stream>>>(
      partial, pieces, l.count(), save_invstd.data<T>(), ptr_or_null<T>(weight), use_batch_stats,
      ptr_or_null<T>(dweight), ptr_or_null<T>(dbias), coef);
  TRANQ_CUDA_CHECK_LAUNCH();
  const int64_t total = x.numel();
  if (!dx.defined() || total == 0) return;
  dx_kernel<T, L><<<grid_for(total), kThreads, 0, stream>>>(
      x.data<T>(), py, dy.data<T>(), pdr, relu, l, save_mean.data<T>(), coef, dx.data<T>(), total);
  TRANQ_CUDA_CHECK_LAUNCH();
}

}  // namespace

void forward(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
             const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
             double momentum, double eps, const Tensor& residual, bool relu, const Tensor& y,
             const Tensor& save_mean, const Tensor& save_invstd) {
  const Layout64 l =
      layout_of(check_batch_norm_forward_args(op, x, weight, bias, running_mean, running_var,
                                              use_batch_stats, eps, y, save_mean, save_invstd));
  check_like_input(residual, x, op, "residual");
  check_on_device(op, x.device(), {{"y", &y}, {"residual", &residual}});
  if (l.c == 0) return;
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (fits_32(l)) {
      forward_with<T>(op, layout_32(l), x, weight, bias, running_mean, running_var, use_batch_stats,
                      momentum, eps, residual, relu, y, save_mean, save_invstd, stream);
    } else {
      forward_with<T>(op, l, x, weight, bias, running_mean, running_var, use_batch_stats, momentum,
                      eps, residual, relu, y, save_mean, save_invstd, stream);
    }
  });
}

void backward(const char* op, const Tensor& x, const Tensor& y, const Tensor& dy,
              const Tensor& weight, const Tensor& save_mean, const Tensor& save_invstd,
              bool use_batch_stats, bool relu, const Tensor& dx, const Tensor& dresidual,
              const Tensor& dweight, const Tensor& dbias) {
  const Layout64 l = layout_of(check_batch_norm_backward_args(op, x, dy, weight, save_mean,
                                                              save_invstd, dx, dweight, dbias));
  check_like_input(y, x, op, "y");
  check_like_input(dresidual, x, op, "dresidual");
  TRANQ_CHECK(!relu || y.defined(), "{}: the ReLU mask needs the forward output y", op);
  check_on_device(op, x.device(), {{"dy", &dy}, {"dx", &dx}, {"y", &y}});
  if (l.c == 0) return;
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_stream(dev);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (fits_32(l)) {
      backward_with<T>(op, layout_32(l), x, y, dy, weight, save_mean, save_invstd, use_batch_stats,
                       relu, dx, dresidual, dweight, dbias, stream);
    } else {
      backward_with<T>(op, l, x, y, dy, weight, save_mean, save_invstd, use_batch_stats, relu, dx,
                       dresidual, dweight, dbias, stream);
    }
  });
}

}  // namespace bn

void batch_norm_act_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var,
                            bool use_batch_stats, double momentum, double eps,
                            const Tensor& residual, bool relu, const Tensor& y,
                            const Tensor& save_mean, const Tensor& save_invstd) {
  bn::forward("batch_norm_act_forward", x, weight, bias, running_mean, running_var, use_batch_stats,
              momentum, eps, residual, relu, y, save_mean, save_invstd);
}

void batch_norm_act_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& weight, const Tensor& save_mean,
                             const Tensor& save_invstd, bool use_batch_stats, bool relu,
                             const Tensor& dx, const Tensor& dresidual, const Tensor& dweight,
                             const Tensor& dbias) {
  bn::backward("batch_norm_act_backward", x, y, dy, weight, save_mean, save_invstd, use_batch_stats,
               relu, dx, dresidual, dweight, dbias);
}

}  // namespace tranq::kernels::cuda
