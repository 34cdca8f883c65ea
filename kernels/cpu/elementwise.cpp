// Reference CPU elementwise ops. Loops are plain so the compiler vectorises them; OpenMP
// splits them statically, which keeps results independent of scheduling.
#include "kernels/elementwise.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
namespace {

void check_binary(const Tensor& a, const Tensor& b, const Tensor& out, const char* op) {
  check_same_shape(a, b, op);
  check_same_shape(a, out, op);
  TRANQ_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), "{}: dtypes differ: {}, {}, {}",
              op, tensor_str(a), tensor_str(b), tensor_str(out));
  TRANQ_CHECK(a.is_contiguous() && b.is_contiguous() && out.is_contiguous(),
              "{}: needs contiguous tensors", op);
}

constexpr int64_t kParallelMin = 1 << 15;

}  // namespace

// out[i] = f(a[i], b[i]) for same-shaped contiguous float tensors.
template <class F>
void binary_map(const Tensor& a, const Tensor& b, const Tensor& out, const char* op, F f) {
  check_binary(a, b, out, op);
  dispatch_floating(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    const int64_t n = a.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
  });
}

void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, const Tensor& out) {
  binary_map(a, b, out, "axpby", [alpha, beta](auto x, auto y) {
    using T = decltype(x);
    return static_cast<T>(alpha) * x + static_cast<T>(beta) * y;
  });
}

void add(const Tensor& a, const Tensor& b, const Tensor& out) {
  binary_map(a, b, out, "add", [](auto x, auto y) { return x + y; });
}

void mul(const Tensor& a, const Tensor& b, const Tensor& out) {
  binary_map(a, b, out, "mul", [](auto x, auto y) { return x * y; });
}

void scale(const Tensor& a, double s, const Tensor& out) {
  check_binary(a, a, out, "scale");
  dispatch_floating(a.dtype(), "scale", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    T* po = out.data<T>();
    const T sv = static_cast<T>(s);
    const int64_t n = a.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) po[i] = sv * pa[i];
  });
}

void relu_forward(const Tensor& x, const Tensor& y, double cap) {
  check_binary(x, x, y, "relu_forward");
  dispatch_floating(x.dtype(), "relu_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const int64_t n = x.numel();
    if (cap > 0) {
      const T c = static_cast<T>(cap);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) py[i] = px[i] <= T(0) ? T(0) : (px[i] >= c ? c : px[i]);
    } else {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) py[i] = px[i] <= T(0) ? T(0) : px[i];
    }
  });
}

void relu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, double cap) {
  check_binary(x, dy, dx, "relu_backward");
  dispatch_floating(x.dtype(), "relu_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = dy.data<T>();
    T* po = dx.data<T>();
    const int64_t n = x.numel();
    // The derivative at the kinks (x == 0, x == cap) is taken as 0, as in PyTorch.
    const T c = cap > 0 ? static_cast<T>(cap) : std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) po[i] = (px[i] > T(0) && px[i] < c) ? pg[i] : T(0);
  });
}

namespace {
// Fixed chunking (independent of the thread count) and an in-order final sum, in double: the
// result is the same whatever the number of threads. f maps an element to its term.
template <class T, class F>
double chunked_sum(const T* px, int64_t n, F f) {
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) s += f(px[i]);
    partial[c] = s;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}
}  // namespace

void sum_all(const Tensor& x, const Tensor& out) {
  TRANQ_CHECK(out.numel() == 1 && out.dtype() == x.dtype(), "sum_all: bad output {}", tensor_str(out));
  TRANQ_CHECK(x.is_contiguous(), "sum_all: needs a contiguous tensor");
  dispatch_floating(x.dtype(), "sum_all", [&](auto tag) {
    using T = decltype(tag);
    const double total = chunked_sum(x.data<T>(), x.numel(), [](T v) { return double(v); });
    *out.data<T>() = static_cast<T>(total);
  });
}

void sum_squares(const Tensor& x, const Tensor& out) {
  TRANQ_CHECK(out.numel() == 1 && out.dtype() == DType::f64,
              "sum_squares: the output must be one f64 element, got {}", tensor_str(out));
  TRANQ_CHECK(x.is_contiguous(), "sum_squares: needs a contiguous tensor");
  dispatch_floating(x.dtype(), "sum_squares", [&](auto tag) {
    using T = decltype(tag);
    *out.data<double>() = chunked_sum(x.data<T>(), x.numel(), [](T v) {
      const double d = v;
      return d * d;
    });
  });
}

}  // namespace tranq::kernels::cpu
