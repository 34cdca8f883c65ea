// Reference CPU dropout: a branch-free masked scale that the compiler vectorises.
#include "kernels/dropout.h"

#include "kernels/dispatch.h"

namespace tranq::kernels::cpu {

void dropout_apply(const Tensor& x, const Tensor& mask, double scale, const Tensor& out) {
  const char* op = "dropout_apply";
  check_same_shape(x, mask, op);
  check_same_shape(x, out, op);
  TRANQ_CHECK(mask.dtype() == DType::u8 && out.dtype() == x.dtype(),
              "{}: expected a u8 mask and out of x's dtype, got mask {}, x {}, out {}", op,
              tensor_str(mask), tensor_str(x), tensor_str(out));
  TRANQ_CHECK(x.is_contiguous() && mask.is_contiguous() && out.is_contiguous(),
              "{}: needs contiguous tensors", op);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const uint8_t* pm = mask.data<uint8_t>();
    T* po = out.data<T>();
    const T s = static_cast<T>(scale);
    const int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) po[i] = px[i] * (static_cast<T>(pm[i]) * s);
  });
}

}  // namespace tranq::kernels::cpu
