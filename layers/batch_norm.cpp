#include "layers/batch_norm.h"

#include "kernels/counter.h"
#include "layers/functional.h"

namespace tranq {

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, DType dtype)
    : num_features_(num_features), eps_(eps), momentum_(momentum) {
  TRANQ_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive, got {}", num_features);
  TRANQ_CHECK(eps > 0 && momentum >= 0 && momentum <= 1,
              "BatchNorm2d: needs eps > 0 and momentum in [0, 1], got eps={} momentum={}", eps,
              momentum);
  TRANQ_CHECK(is_floating(dtype), "BatchNorm2d: dtype must be f32 or f64, got {}",
              dtype_name(dtype));
  weight_ = register_parameter("weight", Tensor::ones({num_features}, dtype));
  bias_ = register_parameter("bias", Tensor::zeros({num_features}, dtype));
  running_mean_ = register_buffer("running_mean", Tensor::zeros({num_features}, dtype));
  running_var_ = register_buffer("running_var", Tensor::ones({num_features}, dtype));
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  TRANQ_CHECK(x.dim() == 4 && x.size(1) == num_features_,
              "BatchNorm2d: expected input [N, {}, H, W], got {}", num_features_, tensor_str(x));
  Tensor y = ops::batch_norm(x, weight_, bias_, running_mean_, running_var_, is_training(),
                             momentum_, eps_);
  count_batch();
  return y;
}

Tensor BatchNorm2d::forward_act(const Tensor& x, const Tensor& residual, bool relu) {
  TRANQ_CHECK(x.dim() == 4 && x.size(1) == num_features_,
              "BatchNorm2d: expected input [N, {}, H, W], got {}", num_features_, tensor_str(x));
  TRANQ_CHECK(!residual.defined() || residual.shape() == x.shape(),
              "BatchNorm2d: the residual must have the input's shape {}, got {}", tensor_str(x),
              tensor_str(residual));
  Tensor y = ops::batch_norm_act(x, weight_, bias_, running_mean_, running_var_, is_training(),
                                 momentum_, eps_, residual, relu);
  count_batch();
  return y;
}

void BatchNorm2d::count_batch() {
  if (is_training()) kernels::add_to_counter(num_batches_tracked_, 1);  // where it lives
}

}  // namespace tranq
