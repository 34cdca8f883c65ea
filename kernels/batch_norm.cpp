#include "kernels/batch_norm.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {
namespace {

BnLayout layout_of(const Tensor& x, const char* op) {
  check_defined(x, op, "x");
  TRANQ_CHECK(x.dim() >= 2, "{}: expected x [N,C,...], got {}", op, tensor_str(x));
  TRANQ_CHECK(x.is_contiguous(), "{}: x must be contiguous, got a strided {}", op, tensor_str(x));
  BnLayout l{x.size(0), x.size(1), 1};
  for (int64_t d = 2; d < x.dim(); ++d) l.inner *= x.size(d);
  return l;
}

void check_channel_vector(const Tensor& t, const Tensor& x, int64_t c, const char* op,
                          const char* arg) {
  if (!t.defined()) return;
  TRANQ_CHECK(t.dim() == 1 && t.size(0) == c && t.is_contiguous(),
              "{}: {} must be a contiguous [{}] tensor, got {}", op, arg, c, tensor_str(t));
  TRANQ_CHECK(t.dtype() == x.dtype() && t.device() == x.device(),
              "{}: {} is {} but x is {}; convert it to x's dtype and device", op, arg,
              tensor_str(t), tensor_str(x));
}

}  // namespace

BnLayout check_batch_norm_forward_args(const char* op, const Tensor& x, const Tensor& weight,
                                       const Tensor& bias, const Tensor& running_mean,
                                       const Tensor& running_var, bool use_batch_stats, double eps,
                                       const Tensor& y, const Tensor& save_mean,
                                       const Tensor& save_invstd) {
  const BnLayout l = layout_of(x, op);
  check_defined(y, op, "y");
  check_same_shape(x, y, op);
  TRANQ_CHECK(y.dtype() == x.dtype() && y.is_contiguous(), "{}: y must be a contiguous {}, got {}",
              op, dtype_name(x.dtype()), tensor_str(y));
  check_channel_vector(weight, x, l.c, op, "weight");
  check_channel_vector(bias, x, l.c, op, "bias");
  check_channel_vector(running_mean, x, l.c, op, "running_mean");
  check_channel_vector(running_var, x, l.c, op, "running_var");
  check_defined(save_mean, op, "save_mean");
  check_defined(save_invstd, op, "save_invstd");
  check_channel_vector(save_mean, x, l.c, op, "save_mean");
  check_channel_vector(save_invstd, x, l.c, op, "save_invstd");
  TRANQ_CHECK(running_mean.defined() == running_var.defined(),
              "{}: running_mean and running_var must both be given or both be omitted", op);
  TRANQ_CHECK(eps > 0, "{}: eps must be positive, got {}", op, eps);
  if (use_batch_stats) {
    TRANQ_CHECK(l.count() > 1,
                "{}: batch statistics need more than one value per channel, got x {}; use a "
                "larger batch or eval mode",
                op, tensor_str(x));
  } else {
    TRANQ_CHECK(running_mean.defined(), "{}: eval mode needs running_mean and running_var", op);
  }
  return l;
}

BnLayout check_batch_norm_backward_args(const char* op, const Tensor& x, const Tensor& dy,
                                        const Tensor& weight, const Tensor& save_mean,
                                        const Tensor& save_invstd, const Tensor& dx,
                                        const Tensor& dweight, const Tensor& dbias) {
  const BnLayout l = layout_of(x, op);
  check_defined(dy, op, "dy");
  check_same_shape(x, dy, op);
  TRANQ_CHECK(dy.dtype() == x.dtype() && dy.is_contiguous(),
              "{}: dy must be a contiguous {}, got {}", op, dtype_name(x.dtype()), tensor_str(dy));
  if (dx.defined()) {
    check_same_shape(x, dx, op);
    TRANQ_CHECK(dx.dtype() == x.dtype() && dx.is_contiguous(),
                "{}: dx must be a contiguous {}, got {}", op, dtype_name(x.dtype()),
                tensor_str(dx));
  }
  check_channel_vector(weight, x, l.c, op, "weight");
  check_defined(save_mean, op, "save_mean");
  check_defined(save_invstd, op, "save_invstd");
  check_channel_vector(save_mean, x, l.c, op, "save_mean");
  check_channel_vector(save_invstd, x, l.c, op, "save_invstd");
  check_channel_vector(dweight, x, l.c, op, "dweight");
  check_channel_vector(dbias, x, l.c, op, "dbias");
  return l;
}

void check_like_input(const Tensor& t, const Tensor& x, const char* op, const char* arg) {
  if (!t.defined()) return;
  check_same_shape(x, t, op);
  TRANQ_CHECK(t.dtype() == x.dtype() && t.device() == x.device() && t.is_contiguous(),
              "{}: {} must be a contiguous {} like x, got {}", op, arg, dtype_name(x.dtype()),
              tensor_str(t));
}

void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd) {
  check_defined(x, "batch_norm_forward", "x");
  check_same_device("batch_norm_forward", x,
                    {&weight, &bias, &running_mean, &running_var, &y, &save_mean, &save_invstd});
  TRANQ_DISPATCH_CUDA(batch_norm_forward, x, x, weight, bias, running_mean, running_var,
                      use_batch_stats, momentum, eps, y, save_mean, save_invstd);
}
void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool use_batch_stats,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  check_defined(x, "batch_norm_backward", "x");
  check_same_device("batch_norm_backward", x,
                    {&dy, &weight, &save_mean, &save_invstd, &dx, &dweight, &dbias});
  TRANQ_DISPATCH_CUDA(batch_norm_backward, x, x, dy, weight, save_mean, save_invstd,
                      use_batch_stats, dx, dweight, dbias);
}
}  // namespace tranq::kernels
