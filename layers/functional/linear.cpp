// matmul and linear over kernels::gemm. Backward closures compute only the gradients of
// inputs that require one (the engine ignores the rest), which skips whole GEMMs.
#include "kernels/gemm.h"
#include "layers/functional.h"

namespace tranq::ops {
namespace {

void check_matrix(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  TRANQ_CHECK(t.dim() == 2, "{}: {} must be 2-D, got {}", op, arg, tensor_str(t));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, ComputePrecision precision) {
  check_matrix(a, "matmul", "a");
  check_matrix(b, "matmul", "b");
  TRANQ_CHECK(a.size(1) == b.size(0), "matmul: inner dimensions differ: a {} @ b {}", tensor_str(a),
              tensor_str(b));
  Tensor ca = a.contiguous(), cb = b.contiguous();
  Tensor out = Tensor::empty({a.size(0), b.size(1)}, a.dtype(), a.device());
  kernels::gemm(false, false, 1.0, ca, cb, 0.0, out, precision);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Tensor sa = need_b ? ca.detach() : Tensor(), sb = need_a ? cb.detach() : Tensor();
  return record(out, "matmul", {a, b}, {sa, sb},
                [sa, sb, need_a, need_b, precision](const Tensor& grad) {
                  Tensor g = grad.contiguous();
                  Tensor ga, gb;
                  if (need_a) {  // dA = G B^T
                    ga = Tensor::empty({g.size(0), sb.size(0)}, g.dtype(), g.device());
                    kernels::gemm(false, true, 1.0, g, sb, 0.0, ga, precision);
                  }
                  if (need_b) {  // dB = A^T G
                    gb = Tensor::empty({sa.size(1), g.size(1)}, g.dtype(), g.device());
                    kernels::gemm(true, false, 1.0, sa, g, 0.0, gb, precision);
                  }
                  return std::vector<Tensor>{ga, gb};
                });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
              ComputePrecision precision) {
  check_matrix(x, "linear", "x");
  check_matrix(weight, "linear", "weight");
  TRANQ_CHECK(x.size(1) == weight.size(1),
              "linear: x {} has {} features but weight {} expects {} ([out, in] layout)",
              tensor_str(x), x.size(1), tensor_str(weight), weight.size(1));
  const int64_t n = x.size(0), out_features = weight.size(0);
  const bool has_bias = bias.defined();
  if (has_bias) {
    TRANQ_CHECK(bias.dim() == 1 && bias.size(0) == out_features,
                "linear: bias is {}, expected [{}]", tensor_str(bias), out_features);
    TRANQ_CHECK(bias.dtype() == x.dtype(), "linear: bias is {} but x is {}; use one dtype",
                tensor_str(bias), tensor_str(x));
  }
  Tensor cx = x.contiguous(), cw = weight.contiguous();
  Tensor y = Tensor::empty({n, out_features}, x.dtype(), x.device());
  double beta = 0.0;
  if (has_bias) {
    // y = ones[n,1] @ bias[1,out], then y += x @ W^T: the bias add as a rank-1 GEMM (in fp32
    // whatever the precision: ones times bias is exact, and the add happens in f32).
    Tensor ones = Tensor::ones({n, 1}, x.dtype(), x.device());
    kernels::gemm(false, false, 1.0, ones, bias.contiguous().view({1, out_features}), 0.0, y);
    beta = 1.0;
  }
  kernels::gemm(false, true, 1.0, cx, cw, beta, y, precision);

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = has_bias && bias.requires_grad();
  Tensor sx = need_w ? cx.detach() : Tensor(), sw = need_x ? cw.detach() : Tensor();
  std::vector<Tensor> inputs{x, weight};
  if (has_bias) inputs.push_back(bias);
  return record(y, "linear", inputs, {sx, sw},
                [sx, sw, need_x, need_w, need_b, has_bias, precision](const Tensor& grad) {
                  Tensor g = grad.contiguous();
                  std::vector<Tensor> grads(has_bias ? 3 : 2);
                  if (need_x) {  // dx = G W
                    grads[0] = Tensor::empty({g.size(0), sw.size(1)}, g.dtype(), g.device());
                    kernels::gemm(false, false, 1.0, g, sw, 0.0, grads[0], precision);
                  }
                  if (need_w) {  // dW = G^T x
                    grads[1] = Tensor::empty({g.size(1), sx.size(1)}, g.dtype(), g.device());
                    kernels::gemm(true, false, 1.0, g, sx, 0.0, grads[1], precision);
                  }
                  if (need_b) {  // db = ones[1,n] @ G, in fp32 (a bias gradient is a sum)
                    Tensor ones = Tensor::ones({1, g.size(0)}, g.dtype(), g.device());
                    Tensor db = Tensor::empty({1, g.size(1)}, g.dtype(), g.device());
                    kernels::gemm(false, false, 1.0, ones, g, 0.0, db);
                    grads[2] = db.view({g.size(1)});
                  }
                  return grads;
                });
}

}  // namespace tranq::ops
