#include "kernels/pool2d.h"

#include "kernels/dispatch.h"

namespace tranq::kernels {

Shape pool2d_output_shape(const Tensor& x, const Pool2dGeometry& g, const char* op) {
  TRANQ_CHECK(x.dim() == 4, "{}: expected x [N,C,H,W], got {}", op, tensor_str(x));
  TRANQ_CHECK(g.kernel_h > 0 && g.kernel_w > 0 && g.stride_h > 0 && g.stride_w > 0,
              "{}: kernel and stride must be positive, got kernel {}x{} stride {}x{}", op,
              g.kernel_h, g.kernel_w, g.stride_h, g.stride_w);
  // As in PyTorch, only the batch and channels may be empty; with non-empty images and this
  // padding every window overlaps the input, so a max always has a real element to pick.
  TRANQ_CHECK(x.size(2) >= 1 && x.size(3) >= 1,
              "{}: input {} has an empty image dimension; only the batch may be 0", op,
              tensor_str(x));
  TRANQ_CHECK(
      g.pad_h >= 0 && g.pad_w >= 0 && 2 * g.pad_h <= g.kernel_h && 2 * g.pad_w <= g.kernel_w,
      "{}: padding must be between 0 and half the kernel, got pad {}x{} for kernel {}x{}", op,
      g.pad_h, g.pad_w, g.kernel_h, g.kernel_w);
  const int64_t h = x.size(2) + 2 * g.pad_h, w = x.size(3) + 2 * g.pad_w;
  TRANQ_CHECK(h >= g.kernel_h && w >= g.kernel_w,
              "{}: kernel {}x{} is larger than the padded input {}x{} of {}", op, g.kernel_h,
              g.kernel_w, h, w, tensor_str(x));
  return {x.size(0), x.size(1), (h - g.kernel_h) / g.stride_h + 1,
          (w - g.kernel_w) / g.stride_w + 1};
}

void max_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y,
                        const Tensor& indices) {
  check_defined(x, "max_pool2d_forward", "x");
  check_same_device("max_pool2d_forward", x, {&y, &indices});
  TRANQ_DISPATCH_CUDA(max_pool2d_forward, x, x, g, y, indices);
}
void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dGeometry& g,
                         const Tensor& dx) {
  check_defined(dy, "max_pool2d_backward", "dy");
  check_same_device("max_pool2d_backward", dy, {&indices, &dx});
  TRANQ_DISPATCH_CUDA(max_pool2d_backward, dy, dy, indices, g, dx);
}
void avg_pool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Tensor& y) {
  check_defined(x, "avg_pool2d_forward", "x");
  check_same_device("avg_pool2d_forward", x, {&y});
  TRANQ_DISPATCH_CUDA(avg_pool2d_forward, x, x, g, y);
}
void avg_pool2d_backward(const Tensor& dy, const Pool2dGeometry& g, const Tensor& dx) {
  check_defined(dy, "avg_pool2d_backward", "dy");
  check_same_device("avg_pool2d_backward", dy, {&dx});
  TRANQ_DISPATCH_CUDA(avg_pool2d_backward, dy, dy, g, dx);
}
void global_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  check_defined(x, "global_avg_pool2d_forward", "x");
  check_same_device("global_avg_pool2d_forward", x, {&y});
  TRANQ_DISPATCH_CUDA(global_avg_pool2d_forward, x, x, y);
}
void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx) {
  check_defined(dy, "global_avg_pool2d_backward", "dy");
  check_same_device("global_avg_pool2d_backward", dy, {&dx});
  TRANQ_DISPATCH_CUDA(global_avg_pool2d_backward, dy, dy, dx);
}

}  // namespace tranq::kernels
