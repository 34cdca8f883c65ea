#include "kernels/quantize.h"

#include <cmath>

#include "kernels/dispatch.h"

namespace tranq::kernels {

QuantRange weight_range(int bits) {
  TRANQ_CHECK(bits >= 1 && bits <= 8,
              "weight_range: weight bit width must be 1..8 (codes are int8), got {}", bits);
  QuantRange r;
  if (bits == 1) {
    r.lo = -1;
    r.hi = 1;
    r.g = 1.0f;
    r.binary_sign = true;
    return r;
  }
  const int32_t half = 1 << (bits - 1);
  r.lo = -half;
  r.hi = half - 1;
  r.g = static_cast<float>(half);
  return r;
}

QuantRange activation_range(int bits) {
  TRANQ_CHECK(bits >= 1 && bits <= 8, "activation_range: activation bit width must be 1..8, got {}",
              bits);
  QuantRange r;
  r.lo = 0;
  r.hi = (1 << bits) - 1;
  r.g = static_cast<float>(1 << bits);
  return r;
}

double lsq_grad_scale_factor(int64_t elements_per_scale, const QuantRange& r) {
  TRANQ_CHECK(elements_per_scale > 0 && r.hi > 0,
              "lsq_grad_scale_factor: needs a positive element count and hi, got N={}, hi={}",
              elements_per_scale, r.hi);
  return 1.0 / std::sqrt(static_cast<double>(elements_per_scale) * static_cast<double>(r.hi));
}

void check_quant_range(const char* op, const QuantRange& r) {
  const bool binary_ok = !r.binary_sign || (r.lo == -1 && r.hi == 1 && r.g == 1.0f);
  TRANQ_CHECK(r.lo < r.hi && r.g > 0 && binary_ok,
              "{}: invalid QuantRange lo={} hi={} g={} binary_sign={}; build it with "
              "weight_range(bits) or activation_range(bits)",
              op, r.lo, r.hi, r.g, r.binary_sign);
}

bool range_fits_i8(const QuantRange& r) {
  return r.lo >= -128 && r.hi <= 127;
}

void check_codes_buffer(const char* op, const char* arg, const Tensor& codes, int64_t numel,
                        const QuantRange& r, bool allow_u8) {
  const std::string got = codes.defined() ? tensor_str(codes) : std::string("undefined");
  TRANQ_CHECK(codes.defined() && codes.is_contiguous() && codes.numel() == numel,
              "{}: {} must be a contiguous tensor with {} elements, got {}", op, arg, numel, got);
  if (codes.dtype() == DType::i8) {
    TRANQ_CHECK(range_fits_i8(r),
                "{}: codes in [{}, {}] do not fit {} (i8); use a u8 tensor for unsigned codes", op,
                r.lo, r.hi, arg);
    return;
  }
  TRANQ_CHECK(allow_u8 && codes.dtype() == DType::u8 && r.lo >= 0 && r.hi <= 255,
              "{}: {} must be i8 (u8 is accepted for unsigned activation codes only), got {}", op,
              arg, got);
}

int64_t check_quantize_args(const char* op, const Tensor& x, const Tensor& scale,
                            const QuantRange& r) {
  check_defined(x, op, "x");
  check_defined(scale, op, "scale");
  check_quant_range(op, r);
  TRANQ_CHECK(is_floating(x.dtype()) && scale.dtype() == x.dtype(),
              "{}: x must be f32 or f64 and scale of x's dtype, got x {}, scale {}", op,
              tensor_str(x), tensor_str(scale));
  TRANQ_CHECK(x.is_contiguous() && scale.is_contiguous(), "{}: needs contiguous x and scale", op);
  TRANQ_CHECK(scale.device() == x.device(), "{}: scale {} is not on x's device ({})", op,
              tensor_str(scale), tensor_str(x));
  TRANQ_CHECK(x.numel() > 0, "{}: x is empty ({})", op, tensor_str(x));
  const bool per_tensor = scale.dim() == 1 && scale.size(0) == 1;
  const bool per_channel = scale.dim() == 1 && x.dim() >= 1 && scale.size(0) == x.size(0);
  TRANQ_CHECK(per_tensor || per_channel,
              "{}: scale must have shape [1] (per tensor) or [{}] (one per slice of dim 0 of x "
              "{}), got {}",
              op, x.dim() >= 1 ? x.size(0) : 1, tensor_str(x), tensor_str(scale));
  return x.numel() / scale.numel();
}

void check_quantize_backward_args(const char* op, const Tensor& x, const Tensor& scale,
                                  const QuantRange& r, const Tensor& dy, const Tensor& dx,
                                  const Tensor& dscale, double grad_scale_factor) {
  check_quantize_args(op, x, scale, r);
  check_defined(dy, op, "dy");
  check_same_shape(x, dy, op);
  TRANQ_CHECK(dy.dtype() == x.dtype() && dy.is_contiguous(), "{}: dy must be contiguous {}, got {}",
              op, dtype_name(x.dtype()), tensor_str(dy));
  if (dx.defined()) {
    check_same_shape(x, dx, op);
    TRANQ_CHECK(dx.dtype() == x.dtype() && dx.is_contiguous(),
                "{}: dx must be contiguous {}, got {}", op, dtype_name(x.dtype()), tensor_str(dx));
  }
  if (dscale.defined()) {
    TRANQ_CHECK(dscale.shape() == scale.shape() && dscale.dtype() == scale.dtype() &&
                    dscale.is_contiguous(),
                "{}: dscale must be contiguous like scale {}, got {}", op, tensor_str(scale),
                tensor_str(dscale));
    TRANQ_CHECK(std::isfinite(grad_scale_factor), "{}: grad_scale_factor must be finite, got {}",
                op, grad_scale_factor);
  }
}

void fake_quantize_forward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                           const Tensor& y, const Tensor& codes) {
  check_defined(x, "fake_quantize_forward", "x");
  check_same_device("fake_quantize_forward", x, {&scale, &y, &codes});
  admit_output("fake_quantize_forward", y, {&x, &scale});
  TRANQ_DISPATCH_CUDA(fake_quantize_forward, x, x, scale, r, y, codes);
}

void fake_quantize_backward(const Tensor& x, const Tensor& scale, const QuantRange& r,
                            const Tensor& dy, const Tensor& dx, const Tensor& dscale,
                            double grad_scale_factor) {
  check_defined(x, "fake_quantize_backward", "x");
  check_same_device("fake_quantize_backward", x, {&scale, &dy, &dx, &dscale});
  admit_output("fake_quantize_backward", dx, {&x, &dy, &scale});
  TRANQ_DISPATCH_CUDA(fake_quantize_backward, x, x, scale, r, dy, dx, dscale, grad_scale_factor);
}

void dequantize_codes(const Tensor& codes, const QuantRange& r, const Tensor& y) {
  check_defined(codes, "dequantize_codes", "codes");
  check_same_device("dequantize_codes", codes, {&y});
  TRANQ_DISPATCH_CUDA(dequantize_codes, codes, codes, r, y);
}

}  // namespace tranq::kernels
