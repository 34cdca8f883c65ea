#pragma once
// Differentiable ops (the autograd layer over kernels/). Each records a Node whose backward
// closure is written next to the forward in layers/functional/<op>.cpp. Inputs must be
// contiguous f32 or f64 tensors on one device unless stated otherwise.
#include <cstdint>
#include <optional>

#include "core/autograd.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/precision.h"

namespace tranq::ops {

// ---- elementwise, same shapes (no broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double s);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
// ---- reductions to a scalar (shape []) ----
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// ---- shape (views in the forward, gradient reshaped back) ----
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 1);

// ---- linear algebra ----
// `precision` (kernels/precision.h) applies to the forward product and both backward
// products of matmul, linear and conv2d; bf16 takes f32 tensors only. Bias adds and bias
// gradients are fp32 either way.
// a [M,K] @ b [K,N] -> [M,N]
Tensor matmul(const Tensor& a, const Tensor& b,
              ComputePrecision precision = ComputePrecision::fp32);
// x [N,in], weight [out,in] (PyTorch layout), bias [out] or undefined -> [N,out]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              ComputePrecision precision = ComputePrecision::fp32);

// ---- convolution ----
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};
// x [N,C,H,W], weight [O, C/groups, KH, KW] (OIHW), bias [O] or undefined -> [N,O,OH,OW]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              ComputePrecision precision = ComputePrecision::fp32);

// ---- normalisation ----
// x [N,C,H,W] (or [N,C]). In training, normalises with batch statistics (biased variance) and
// updates running_mean/var in place when defined, PyTorch-style:
//   running = (1 - momentum) * running + momentum * batch_stat, the variance unbiased (n/(n-1)).
// In eval, normalises with the running statistics. weight/bias may be undefined (affine off).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5);
// relu(batch_norm(x) + residual) in one pass (kernels/batch_norm_act.h); residual may be
// undefined and relu false, so it also serves as plain BN + ReLU or BN + add. Equal to the
// composition of batch_norm, add and relu up to float rounding; gradients flow to x, weight,
// bias and residual.
Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      double momentum, double eps, const Tensor& residual, bool relu);

// ---- pooling, x [N,C,H,W] ----
struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
};
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
// Padding counts towards the divisor (count_include_pad=True, PyTorch's default).
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
// Mean over H and W -> [N,C,1,1] (AdaptiveAvgPool2d((1,1))).
Tensor global_avg_pool2d(const Tensor& x);

// ---- regularisation ----
// Inverted dropout: zeroes with probability p and scales survivors by 1/(1-p) in training;
// identity otherwise. The mask comes from rng, so runs are reproducible.
Tensor dropout(const Tensor& x, double p, bool training, Rng& rng);

// ---- loss ----
// logits [N,C], labels i32 [N] in [0,C). Mean over the batch of the softmax cross-entropy
// against (1-eps)*onehot + eps/C, eps = label_smoothing (PyTorch semantics). Scalar output.
// The labels' values are checked (ValueError naming the first bad one) on a host copy, which
// on CUDA waits for the device; labels_checked = true is the caller's promise that it has
// checked them already (kernels::check_labels, e.g. on the host batch before the upload), so
// a training step need not wait. A bad label then gives a NaN loss on CUDA (kernels/
// cross_entropy.h); the CPU kernel still refuses it.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0,
                     bool labels_checked = false);

}  // namespace tranq::ops
