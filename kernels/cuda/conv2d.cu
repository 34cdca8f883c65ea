// CUDA convolution on cuDNN's legacy convolution API (groups, depthwise, dilation; f32 and f64),
// with the bias gradient as a kernel of its own.
//
// Algorithms come from cuDNN's heuristics (cudnnGet*Algorithm_v7), not from timing them
// (cudnnFind*): timing can pick another algorithm in another run, and with it other rounding,
// while the heuristics answer the same for the same shape, build and GPU. Of the candidates we
// take the first that is supported, deterministic (no atomics: backward ALGO_0s are not), needs
// at most kMaxWorkspace bytes and, for f32 without allow_tf32(), runs without tensor-core math
// (CUDNN_FMA_MATH; CUDNN_DEFAULT_MATH would permit TF32 on Ampere and later); algorithms cuDNN
// documents as deterministic follow as fallbacks. The first that runs is cached per (device,
// direction, dtype, shapes, params, tf32).
//
// The bias gradient sums each channel in double (a fixed strided split, then block_sum's fixed
// tree), one block per channel: deterministic, without cudnnConvolutionBackwardBias's unstated
// order.
//
// Builds without cuDNN (cmake/cuda.cmake: TRANQ_WITH_CUDNN=0) keep the bias gradient; the other
// three throw DeviceError naming the missing library.
#include <map>
#include <mutex>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

#ifndef TRANQ_WITH_CUDNN
#define TRANQ_WITH_CUDNN 0
#endif
#if TRANQ_WITH_CUDNN
#include <cudnn.h>

#include "kernels/cuda/cudnn_handle.cuh"
#endif

namespace tranq::kernels::cuda {
namespace {

using ::tranq::cuda::block_sum;
using ::tranq::cuda::check_on_device;
using ::tranq::cuda::current_stream;
using ::tranq::cuda::DeviceGuard;
using ::tranq::cuda::grid_exact;
using ::tranq::cuda::kThreads;

enum class Direction { forward, backward_data, backward_weight };

const char* direction_name(Direction dir) {
  return dir == Direction::forward         ? "conv2d_forward"
         : dir == Direction::backward_data ? "conv2d_backward_data"
                                           : "conv2d_backward_weight";
}

#if TRANQ_WITH_CUDNN

constexpr size_t kMaxWorkspace = size_t{256} << 20;

// RAII cuDNN descriptors.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { TRANQ_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { TRANQ_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { TRANQ_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// The descriptors of one convolution: x [N,C,H,W], w [O,C/G,KH,KW], y [N,O,OH,OW].
struct Descs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnDataType_t type;
};

void describe(Descs& d, const Conv2dGeometry& g, DType dtype, const char* op) {
  d.type = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  // cuDNN's legacy descriptors hold int sizes and strides: whole tensors must fit an int.
  to_int(g.N * g.C * g.H * g.W, op, "the input's element count");
  to_int(g.N * g.O * g.OH * g.OW, op, "the output's element count");
  to_int(g.O * g.Cg * g.KH * g.KW, op, "the weight's element count");
  auto i = [op](int64_t v) { return to_int(v, op, "a size"); };
  TRANQ_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(d.x.d, CUDNN_TENSOR_NCHW, d.type, i(g.N), i(g.C), i(g.H), i(g.W)));
  TRANQ_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.y.d, CUDNN_TENSOR_NCHW, d.type, i(g.N), i(g.O),
                                               i(g.OH), i(g.OW)));
  TRANQ_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d.w.d, d.type, CUDNN_TENSOR_NCHW, i(g.O), i(g.Cg),
                                               i(g.KH), i(g.KW)));
  TRANQ_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d.conv.d, i(g.ph), i(g.pw), i(g.sh), i(g.sw),
                                                    i(g.dh), i(g.dw), CUDNN_CROSS_CORRELATION,
                                                    d.type));
  TRANQ_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d.conv.d, i(g.G)));
}

// An algorithm (of the direction's enum, stored as int), its math type and workspace size.
struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// Perf records of the three directions have the same fields; this reads them alike.
struct Candidate {
  int algo;
  cudnnStatus_t status;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};
template <class Perf>
Candidate candidate(const Perf& p) {
  return {static_cast<int>(p.algo), p.status, p.memory, p.determinism, p.mathType};
}

// cuDNN's ranked candidates; none when the heuristics fail, leaving the deterministic fallbacks.
std::vector<Candidate> heuristic_candidates(cudnnHandle_t h, Direction dir, const Descs& d) {
  std::vector<Candidate> out;
  int returned = 0;
  if (dir == Direction::forward) {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    if (cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.d, d.w.d, d.conv.d, d.y.d,
                                               static_cast<int>(perf.size()), &returned,
                                               perf.data()) != CUDNN_STATUS_SUCCESS)
      return out;
    for (int k = 0; k < returned; ++k) out.push_back(candidate(perf[static_cast<size_t>(k)]));
  } else if (dir == Direction::backward_data) {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    if (cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w.d, d.y.d, d.conv.d, d.x.d,
                                                    static_cast<int>(perf.size()), &returned,
                                                    perf.data()) != CUDNN_STATUS_SUCCESS)
      return out;
    for (int k = 0; k < returned; ++k) out.push_back(candidate(perf[static_cast<size_t>(k)]));
  } else {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x.d, d.y.d, d.conv.d, d.w.d,
                                                      static_cast<int>(perf.size()), &returned,
                                                      perf.data()) != CUDNN_STATUS_SUCCESS)
      return out;
    for (int k = 0; k < returned; ++k) out.push_back(candidate(perf[static_cast<size_t>(k)]));
  }
  return out;
}

// Workspace of `algo` with the math type already set on d.conv; false when cuDNN refuses it.
bool workspace_size(cudnnHandle_t h, Direction dir, const Descs& d, int algo, size_t* bytes) {
  cudnnStatus_t st;
  if (dir == Direction::forward) {
    st = cudnnGetConvolutionForwardWorkspaceSize(
        h, d.x.d, d.w.d, d.conv.d, d.y.d, static_cast<cudnnConvolutionFwdAlgo_t>(algo), bytes);
  } else if (dir == Direction::backward_data) {
    st = cudnnGetConvolutionBackwardDataWorkspaceSize(
        h, d.w.d, d.y.d, d.conv.d, d.x.d, static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
  } else {
    st = cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, d.x.d, d.y.d, d.conv.d, d.w.d, static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo),
        bytes);
  }
  // Any failure here means "not this algorithm" (cuDNN 9 has many NOT_SUPPORTED_* codes); the
  // caller tries the next and reports when none is left.
  return st == CUDNN_STATUS_SUCCESS;
}

// Algorithms cuDNN documents as deterministic for every data type, tried after the
// heuristics' list (which may omit them): implicit GEMM forward, ALGO_1 backward.
std::vector<int> deterministic_fallbacks(Direction dir) {
  if (dir == Direction::forward)
    return {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM};
  if (dir == Direction::backward_data) return {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
  return {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
}

// FFT and Winograd algorithms multiply transforms of the operands, not the operands: under
// tensor-op math those transforms would be cut to TF32, so bf16 (which relies on the
// operands being exact in TF32) uses the GEMM-type algorithms only.
bool transforms_operands(Direction dir, int algo) {
  if (dir == Direction::forward)
    return algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT ||
           algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
           algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
           algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
  if (dir == Direction::backward_data)
    return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
           algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
           algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
           algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
  return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ||
         algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD ||
         algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// The usable algorithms in preference order: the heuristics' deterministic candidates within
// the workspace cap (for f32 without TF32: not tensor-op ones, and run with FMA math; for bf16:
// GEMM-type ones, tensor-op math allowed), then the fallbacks. Each has passed cuDNN's workspace
// query with its math type. Leaves d.conv's math type changed.
std::vector<Choice> usable_choices(cudnnHandle_t h, Direction dir, Descs& d, DType dtype, bool tf32,
                                   bool bf16) {
  // Without TF32, f32 runs on FMA kernels only; f64 is never reduced, whatever the math type.
  const bool restrict_fma = dtype == DType::f32 && !tf32;
  std::vector<Choice> out;
  auto consider = [&](int algo, cudnnMathType_t math) {
    if (bf16 && transforms_operands(dir, algo)) return;
    for (const Choice& c : out)
      if (c.algo == algo && c.math == math) return;
    if (cudnnSetConvolutionMathType(d.conv.d, math) != CUDNN_STATUS_SUCCESS) return;
    Choice choice{algo, math, 0};
    if (!workspace_size(h, dir, d, algo, &choice.workspace)) return;
    if (choice.workspace > kMaxWorkspace) return;
    out.push_back(choice);
  };
  for (const Candidate& c : heuristic_candidates(h, dir, d)) {
    if (c.status != CUDNN_STATUS_SUCCESS || c.determinism != CUDNN_DETERMINISTIC) continue;
    if (c.memory > kMaxWorkspace) continue;
    if (restrict_fma &&
        (c.math == CUDNN_TENSOR_OP_MATH || c.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    // ALLOW_CONVERSION may convert f32 operands to FP16, whose range and precision are
    // narrower than the TF32 (or bf16) a caller opted into: plain tensor-op math instead.
    const cudnnMathType_t math = restrict_fma ? CUDNN_FMA_MATH
                                 : c.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
                                     ? CUDNN_TENSOR_OP_MATH
                                     : c.math;
    consider(c.algo, math);
  }
  for (int algo : deterministic_fallbacks(dir))
    consider(algo, restrict_fma ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
  return out;
}

// Runs `c` for one direction; the status, so that the caller can try the next algorithm.
cudnnStatus_t execute(cudnnHandle_t h, Direction dir, const Descs& d, const Choice& c,
                      const Tensor& x, const Tensor& w, const Tensor& y) {
  const cudnnStatus_t st = cudnnSetConvolutionMathType(d.conv.d, c.math);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  Buffer ws = scratch_buffer(c.workspace, y.device());
  // Scaling factors are double for double data, float otherwise.
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const bool f64 = d.type == CUDNN_DATA_DOUBLE;
  const void* one = f64 ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* zero = f64 ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f);
  if (dir == Direction::forward) {
    return cudnnConvolutionForward(h, one, d.x.d, x.raw_data(), d.w.d, w.raw_data(), d.conv.d,
                                   static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws.data(),
                                   c.workspace, zero, d.y.d, y.raw_data());
  }
  if (dir == Direction::backward_data) {
    return cudnnConvolutionBackwardData(h, one, d.w.d, w.raw_data(), d.y.d, y.raw_data(), d.conv.d,
                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo),
                                        ws.data(), c.workspace, zero, d.x.d, x.raw_data());
  }
  return cudnnConvolutionBackwardFilter(h, one, d.x.d, x.raw_data(), d.y.d, y.raw_data(), d.conv.d,
                                        static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
                                        ws.data(), c.workspace, zero, d.w.d, w.raw_data());
}

// Runs one direction: forward y = conv(x, w); backward_data dx (`x`) from (dy = `y`, w);
// backward_weight dw (`w`) from (x, dy = `y`). Every output is overwritten (beta = 0). The first
// call for a shape tries the usable algorithms in order (cuDNN may still refuse one at run time,
// e.g. a kernel that needs tensor cores under FMA math) and caches the first that runs; the
// order is fixed, so every process settles on the same one.
void run(Direction dir, const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y,
         bool bf16) {
  const char* op = direction_name(dir);
  const int device = y.device().index;
  const DType dtype = y.dtype();
  Descs d;
  describe(d, g, dtype, op);
  // Operands pre-rounded to bf16 lose nothing in TF32: tensor-core math is exact for them.
  const bool tf32 = dtype == DType::f32 && (allow_tf32() || bf16);
  std::vector<int64_t> key = {g.N, g.C, g.H, g.W, g.O, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh};
  key.insert(key.end(), {g.dw, g.G, device, static_cast<int64_t>(dir), static_cast<int64_t>(dtype),
                         tf32 ? 1 : 0, bf16 ? 1 : 0});
  static std::mutex cache_mutex;
  static auto* cache = new std::map<std::vector<int64_t>, Choice>();

  DeviceGuard guard(device);
  CudnnHandle& h = cudnn_handle(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  TRANQ_CUDNN_CHECK(cudnnSetStream(h.handle, current_stream(device)));
  {
    std::unique_lock<std::mutex> cache_lock(cache_mutex);
    auto it = cache->find(key);
    if (it != cache->end()) {
      const Choice c = it->second;
      cache_lock.unlock();
      if (execute(h.handle, dir, d, c, x, w, y) == CUDNN_STATUS_SUCCESS) return;
      // The choice can depend on more than the key (e.g. the alignment of a view's data):
      // search again for these operands, and cache what runs now.
      cudaGetLastError();
      cache_lock.lock();
      cache->erase(key);
    }
  }
  // An error pending from earlier work surfaces here, not cleared by the search below.
  TRANQ_CUDA_CHECK(cudaGetLastError());
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  for (const Choice& c : usable_choices(h.handle, dir, d, dtype, tf32, bf16)) {
    last = execute(h.handle, dir, d, c, x, w, y);
    cudaGetLastError();  // a refused launch must not surface at the next kernel's check
    if (last == CUDNN_STATUS_SUCCESS) {
      std::lock_guard<std::mutex> cache_lock(cache_mutex);
      (*cache)[key] = c;
      return;
    }
  }
  TRANQ_THROW(DeviceError,
              "{}: no deterministic cuDNN algorithm within {} MiB of workspace runs x [{}, {}, {}, "
              "{}], weight [{}, {}, {}, {}], groups {}, {} (last status: {})",
              op, kMaxWorkspace >> 20, g.N, g.C, g.H, g.W, g.O, g.Cg, g.KH, g.KW, g.G,
              dtype_name(dtype), cudnnGetErrorString(last));
}

#else  // !TRANQ_WITH_CUDNN

[[noreturn]] void run(Direction dir, const Conv2dGeometry&, const Tensor&, const Tensor&,
                      const Tensor&, bool) {
  TRANQ_THROW(DeviceError,
              "{}: this build of tranq has no cuDNN, which CUDA convolutions need; install cuDNN "
              "and reconfigure (cmake -DCUDNN_ROOT=<prefix>), or run the model on the CPU",
              direction_name(dir));
}

#endif  // TRANQ_WITH_CUDNN

// run() under `precision`: for bf16, the two inputs of the direction (x and w forward; w and
// dy = `y` for the data gradient; x and dy for the weight gradient) are replaced by rounded
// copies; the output is written in f32 as for fp32.
void run_maybe_bf16(Direction dir, const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor& y, ComputePrecision precision) {
  if (precision != ComputePrecision::bf16) return run(dir, g, x, w, y, false);
  const char* op = direction_name(dir);
  check_bf16_dtypes(op, {&x, &w, &y});
  if (dir == Direction::forward)
    return run(dir, g, bf16_rounded_copy(x, op, "x"), bf16_rounded_copy(w, op, "weight"), y, true);
  if (dir == Direction::backward_data)
    return run(dir, g, x, bf16_rounded_copy(w, op, "weight"), bf16_rounded_copy(y, op, "dy"), true);
  run(dir, g, bf16_rounded_copy(x, op, "x"), w, bf16_rounded_copy(y, op, "dy"), true);
}

// y[n, o, :, :] += bias[o]: one add per element, rounded on its own.
template <class T>
__global__ void add_bias_kernel(T* y, const T* bias, int64_t total, int64_t O, int64_t P) {
  TRANQ_GRID_STRIDE_LOOP(i, total) y[i] = ::tranq::cuda::add_rn(y[i], bias[(i / P) % O]);
}

// db[o] = sum over n and positions of dy[n, o, :]: block o, a fixed order.
template <class T>
__global__ void bias_grad_kernel(const T* dy, T* db, int64_t N, int64_t O, int64_t P) {
  __shared__ double smem[kThreads];
  const int64_t o = blockIdx.x;
  double s = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* row = dy + (n * O + o) * P;
    for (int64_t p = threadIdx.x; p < P; p += blockDim.x) s += static_cast<double>(row[p]);
  }
  const double total = block_sum(s, smem);
  if (threadIdx.x == 0) db[o] = static_cast<T>(total);
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const Conv2dParams& p, ComputePrecision precision) {
  const char* op = "conv2d_forward";
  check_conv2d_operand(x, x, op, "x");
  check_conv2d_operand(w, x, op, "weight");
  check_conv2d_operand(y, x, op, "y");
  check_on_device(op, x.device(), {});
  check_conv2d_shape(y, conv2d_output_shape(x.shape(), w.shape(), p), op, "y");
  if (bias.defined()) {
    check_conv2d_operand(bias, x, op, "bias");
    check_conv2d_shape(bias, {w.size(0)}, op, "bias");
  }
  const Conv2dGeometry g(x.shape(), w.shape(), p);
  if (y.numel() == 0) return;
  if (g.Cg == 0) {
    y.zero_();  // an empty sum (cuDNN refuses zero channels); the bias is added below
  } else {
    run_maybe_bf16(Direction::forward, g, x, w, y, precision);
  }
  if (!bias.defined()) return;
  const int64_t total = y.numel();
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    add_bias_kernel<T><<<::tranq::cuda::grid_for(total), kThreads, 0, current_stream(device)>>>(
        y.data<T>(), bias.data<T>(), total, g.O, g.OH * g.OW);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p, ComputePrecision precision) {
  const char* op = "conv2d_backward_data";
  check_conv2d_operand(dx, dx, op, "dx");
  check_conv2d_operand(dy, dx, op, "dy");
  check_conv2d_operand(w, dx, op, "weight");
  check_on_device(op, dx.device(), {});
  check_conv2d_shape(dy, conv2d_output_shape(dx.shape(), w.shape(), p), op, "dy");
  const Conv2dGeometry g(dx.shape(), w.shape(), p);
  if (dx.numel() == 0) return;
  if (dy.numel() == 0) return dx.zero_();
  run_maybe_bf16(Direction::backward_data, g, dx, w, dy, precision);
}

void conv2d_backward_weight(const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Conv2dParams& p, ComputePrecision precision) {
  const char* op = "conv2d_backward_weight";
  check_conv2d_operand(x, x, op, "x");
  check_conv2d_operand(dy, x, op, "dy");
  check_conv2d_operand(dw, x, op, "dw");
  check_on_device(op, x.device(), {});
  check_conv2d_shape(dy, conv2d_output_shape(x.shape(), dw.shape(), p), op, "dy");
  const Conv2dGeometry g(x.shape(), dw.shape(), p);
  if (dw.numel() == 0) return;
  if (dy.numel() == 0) return dw.zero_();
  run_maybe_bf16(Direction::backward_weight, g, x, dw, dy, precision);
}

void conv2d_backward_bias(const Tensor& dy, const Tensor& db) {
  const char* op = "conv2d_backward_bias";
  check_conv2d_operand(dy, dy, op, "dy");
  check_conv2d_operand(db, dy, op, "db");
  check_on_device(op, dy.device(), {});
  TRANQ_CHECK(dy.dim() == 4, "{}: expected dy [N, O, OH, OW], got {}", op, tensor_str(dy));
  check_conv2d_shape(db, {dy.size(1)}, op, "db");
  const int64_t N = dy.size(0), O = dy.size(1), P = dy.size(2) * dy.size(3);
  if (O == 0) return;
  const int device = dy.device().index;
  DeviceGuard guard(device);
  dispatch_floating(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    bias_grad_kernel<T><<<grid_exact(O, op), kThreads, 0, current_stream(device)>>>(
        dy.data<T>(), db.data<T>(), N, O, P);
    TRANQ_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace tranq::kernels::cuda
