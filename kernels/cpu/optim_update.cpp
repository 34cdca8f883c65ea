// Reference CPU optimizer updates. Each element is independent, so a static OpenMP split gives
// the same bits for any thread count. The arithmetic follows torch.optim's tensor ops one by
// one, in the parameter's dtype, so f32 results track PyTorch's closely.
#include "kernels/optim_update.h"

#include <cmath>

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;

void check_like(const Tensor& param, const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  TRANQ_CHECK(
      t.shape() == param.shape() && t.dtype() == param.dtype() && t.device() == param.device(),
      "{}: '{}' is {}, expected {} like the parameter", op, arg, tensor_str(t), tensor_str(param));
  TRANQ_CHECK(t.is_contiguous(), "{}: '{}' must be contiguous", op, arg);
}

}  // namespace

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                double momentum, double dampening, double weight_decay, bool nesterov,
                bool first_step) {
  check_defined(param, "sgd_update", "param");
  TRANQ_CHECK(param.is_contiguous(), "sgd_update: 'param' must be contiguous");
  check_like(param, grad, "sgd_update", "grad");
  const bool use_momentum = momentum != 0.0;
  if (use_momentum) check_like(param, momentum_buf, "sgd_update", "momentum_buf");
  dispatch_floating(param.dtype(), "sgd_update", [&](auto tag) {
    using T = decltype(tag);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* buf = use_momentum ? momentum_buf.data<T>() : nullptr;
    const T wd = static_cast<T>(weight_decay), mom = static_cast<T>(momentum);
    const T damp = static_cast<T>(1.0 - dampening), neg_lr = static_cast<T>(-lr);
    const bool decay = weight_decay != 0.0;
    const int64_t n = param.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      T d = decay ? g[i] + wd * p[i] : g[i];
      if (use_momentum) {
        const T b = first_step ? d : buf[i] * mom + damp * d;
        buf[i] = b;
        d = nesterov ? d + mom * b : b;
      }
      p[i] = p[i] + neg_lr * d;
    }
  });
}

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step) {
  check_defined(param, "adam_update", "param");
  TRANQ_CHECK(param.is_contiguous(), "adam_update: 'param' must be contiguous");
  check_like(param, grad, "adam_update", "grad");
  check_like(param, exp_avg, "adam_update", "exp_avg");
  check_like(param, exp_avg_sq, "adam_update", "exp_avg_sq");
  TRANQ_CHECK(step >= 1, "adam_update: step counts updates from 1, got {}", step);
  // Bias corrections in double, as torch computes them on Python floats.
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
  dispatch_floating(param.dtype(), "adam_update", [&](auto tag) {
    using T = decltype(tag);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
    const T omb1 = static_cast<T>(1.0 - beta1), omb2 = static_cast<T>(1.0 - beta2);
    const T e = static_cast<T>(eps), c2 = static_cast<T>(bc2_sqrt);
    const T neg_step_size = static_cast<T>(-(lr / bc1));
    const T wd = static_cast<T>(weight_decay), shrink = static_cast<T>(1.0 - lr * weight_decay);
    const bool l2 = !decoupled && weight_decay != 0.0, decay = decoupled && weight_decay != 0.0;
    const int64_t n = param.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      T pi = p[i];
      if (decay) pi = pi * shrink;
      const T gi = l2 ? g[i] + wd * pi : g[i];
      const T mi = m[i] * b1 + omb1 * gi;
      const T vi = v[i] * b2 + omb2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      const T denom = std::sqrt(vi) / c2 + e;
      p[i] = pi + neg_step_size * (mi / denom);
    }
  });
}

}  // namespace tranq::kernels::cpu
