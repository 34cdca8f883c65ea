// CUDA (cuDNN) convolution against the CPU on the same random inputs: forward with and without
// bias, data, weight and bias gradients, for strides, padding, dilation, groups (depthwise with
// and without a channel multiplier), 1x1 and a 7x7 stem, odd sizes, f32 and f64, within
// kTolF32 / kTolF64 (normalised; cuda_ops_test_util.h) and the same bits on a second run. Also
// a small network (conv, batch norm, ReLU, pooling, linear, cross-entropy) trained one step on
// the GPU through ops:: autograd against the same step on the CPU. Skipped, with the reason,
// without a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda_ops_test_util.h"
#include "kernels/conv2d.h"
#include "kernels/gemm.h"
#include "layers/functional.h"

using namespace tranq;
using kernels::Conv2dParams;
using test::empty_gpu;
using test::expect_equal_bits;
using test::expect_near_cpu;
using test::on_gpu;
using test::uniform;

namespace {

struct Case {
  int64_t n, c, h, w, o, kh, kw;
  Conv2dParams p;
};

Conv2dParams params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                    int64_t groups) {
  Conv2dParams p;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw;
  p.dilation_h = dh, p.dilation_w = dw, p.groups = groups;
  return p;
}

const std::vector<Case> kCases = {
    {2, 3, 9, 11, 5, 3, 3, params(1, 1, 1, 1, 1, 1, 1)},    // odd sizes, same padding
    {3, 4, 10, 7, 6, 3, 2, params(2, 1, 1, 0, 1, 1, 2)},    // mixed strides, groups 2
    {1, 6, 13, 13, 6, 3, 3, params(2, 2, 1, 1, 1, 1, 6)},   // depthwise, stride 2
    {2, 4, 8, 9, 8, 3, 3, params(1, 1, 1, 1, 1, 1, 4)},     // depthwise, multiplier 2
    {2, 4, 12, 12, 8, 3, 3, params(1, 1, 2, 2, 2, 2, 1)},   // dilation 2
    {2, 5, 11, 10, 7, 3, 3, params(1, 2, 3, 1, 3, 2, 1)},   // mixed dilation and padding
    {2, 8, 7, 7, 16, 1, 1, params(1, 1, 0, 0, 1, 1, 1)},    // 1x1
    {2, 6, 9, 9, 12, 3, 3, params(1, 1, 1, 1, 1, 1, 3)},    // groups 3
    {1, 3, 32, 30, 16, 7, 7, params(2, 2, 3, 3, 1, 1, 1)},  // stem
    {4, 16, 8, 8, 32, 3, 3, params(2, 2, 1, 1, 1, 1, 1)},   // downsampling block
};

std::string label(const Case& k, DType dt) {
  return fmt::format("x [{}, {}, {}, {}] w [{}, {}, {}, {}] s {}x{} p {}x{} d {}x{} g {} {}", k.n,
                     k.c, k.h, k.w, k.o, k.c / k.p.groups, k.kh, k.kw, k.p.stride_h, k.p.stride_w,
                     k.p.pad_h, k.p.pad_w, k.p.dilation_h, k.p.dilation_w, k.p.groups,
                     dtype_name(dt));
}

}  // namespace

TEST(CudaOpsConv2d, ForwardAndGradientsMatchCpu) {
  TRANQ_REQUIRE_CUDA_CONV();
  uint64_t seed = 1;
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& k : kCases) {
      const std::string what = label(k, dt);
      const Shape xs{k.n, k.c, k.h, k.w}, ws{k.o, k.c / k.p.groups, k.kh, k.kw};
      const Shape ys = kernels::conv2d_output_shape(xs, ws, k.p);
      const Tensor x = uniform(xs, ++seed, dt), w = uniform(ws, ++seed, dt),
                   b = uniform({k.o}, ++seed, dt), dy = uniform(ys, ++seed, dt);
      const Tensor gx = on_gpu(x), gw = on_gpu(w), gb = on_gpu(b), gdy = on_gpu(dy);

      for (bool bias : {false, true}) {
        Tensor y = Tensor::empty(ys, dt), gy = test::nan_filled(ys, dt, test::gpu());
        kernels::conv2d_forward(x, w, bias ? b : Tensor(), y, k.p);
        kernels::conv2d_forward(gx, gw, bias ? gb : Tensor(), gy, k.p);
        expect_near_cpu(gy, y, test::tol_for(dt), what + (bias ? " forward+bias" : " forward"));
        Tensor gy2 = empty_gpu(ys, dt);
        kernels::conv2d_forward(gx, gw, bias ? gb : Tensor(), gy2, k.p);
        expect_equal_bits(gy2, gy, what + " forward (two runs)");
      }

      Tensor dx = Tensor::empty(xs, dt), gdx = test::nan_filled(xs, dt, test::gpu());
      kernels::conv2d_backward_data(dy, w, dx, k.p);
      kernels::conv2d_backward_data(gdy, gw, gdx, k.p);
      expect_near_cpu(gdx, dx, test::tol_for(dt), what + " backward_data");

      Tensor dw = Tensor::empty(ws, dt), gdw = test::nan_filled(ws, dt, test::gpu());
      kernels::conv2d_backward_weight(x, dy, dw, k.p);
      kernels::conv2d_backward_weight(gx, gdy, gdw, k.p);
      expect_near_cpu(gdw, dw, test::tol_for(dt), what + " backward_weight");
      Tensor gdw2 = empty_gpu(ws, dt);
      kernels::conv2d_backward_weight(gx, gdy, gdw2, k.p);
      expect_equal_bits(gdw2, gdw, what + " backward_weight (two runs)");

      Tensor db = Tensor::empty({k.o}, dt), gdb = test::nan_filled({k.o}, dt, test::gpu());
      kernels::conv2d_backward_bias(dy, db);
      kernels::conv2d_backward_bias(gdy, gdb);
      expect_near_cpu(gdb, db, test::tol_for(dt), what + " backward_bias");
    }
  }
}

// With TF32 allowed, f32 convolutions and GEMMs may use tensor cores: still close (10-bit
// products), and turning it off again restores full precision (the algorithm cache is keyed on
// the setting).
TEST(CudaOpsConv2d, Tf32IsOptIn) {
  TRANQ_REQUIRE_CUDA_CONV();
  ASSERT_FALSE(kernels::allow_tf32());
  const Case& k = kCases[7];
  const Shape xs{k.n, k.c, k.h, k.w}, ws{k.o, k.c / k.p.groups, k.kh, k.kw};
  const Shape ys = kernels::conv2d_output_shape(xs, ws, k.p);
  const Tensor x = uniform(xs, 11, DType::f32), w = uniform(ws, 12, DType::f32);
  Tensor y = Tensor::empty(ys, DType::f32), gy = empty_gpu(ys, DType::f32);
  kernels::conv2d_forward(x, w, Tensor(), y, k.p);
  kernels::set_allow_tf32(true);
  kernels::conv2d_forward(on_gpu(x), on_gpu(w), Tensor(), gy, k.p);
  kernels::set_allow_tf32(false);
  expect_near_cpu(gy, y, 1e-2, "tf32 forward");
  kernels::conv2d_forward(on_gpu(x), on_gpu(w), Tensor(), gy, k.p);
  expect_near_cpu(gy, y, test::kTolF32, "forward after tf32 is off again");
}

// One training step of a small network through ops:: autograd: the loss and every parameter's
// gradient on the GPU against the CPU.
TEST(CudaOpsConv2d, SmallNetworkStepMatchesCpu) {
  TRANQ_REQUIRE_CUDA_CONV();
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x0 = uniform({4, 3, 12, 12}, 1, dt);
    const Tensor labels0 = Tensor::from_vector<int32_t>({0, 3, 1, 4}, {4});
    std::vector<Tensor> init = {
        uniform({8, 3, 3, 3}, 2, dt), uniform({8}, 3, dt),          uniform({8}, 4, dt, 0.5, 1.5),
        uniform({8}, 5, dt),          uniform({8, 1, 3, 3}, 6, dt), uniform({8}, 7, dt, 0.5, 1.5),
        uniform({8}, 8, dt),          uniform({5, 8}, 9, dt),       uniform({5}, 10, dt)};
    struct Result {
      Tensor loss;
      std::vector<Tensor> grads;
      Tensor running_mean;
    };
    auto step = [&](Device dev) {
      std::vector<Tensor> p;
      for (const Tensor& t : init) {
        p.push_back(t.to(dev).clone());
        p.back().set_requires_grad(true);
      }
      Tensor rm = Tensor::zeros({8}, dt, dev), rv = Tensor::ones({8}, dt, dev);
      Tensor h = ops::conv2d(x0.to(dev), p[0], p[1], {1, 1, 1, 1, 1, 1, 1});
      h = ops::relu(ops::batch_norm(h, p[2], p[3], rm, rv, true, 0.1, 1e-5));
      h = ops::max_pool2d(h, {2, 2, 2, 2, 0, 0});
      const Tensor skip = h;
      h = ops::conv2d(h, p[4], Tensor(), {1, 1, 1, 1, 1, 1, 8});  // depthwise
      h = ops::batch_norm_act(h, p[5], p[6], Tensor(), Tensor(), true, 0.1, 1e-5, skip, true);
      h = ops::flatten(ops::global_avg_pool2d(h), 1);
      const Tensor loss = ops::cross_entropy(ops::linear(h, p[7], p[8]), labels0.to(dev), 0.1);
      loss.backward();
      Result r{loss, {}, rm};
      for (const Tensor& t : p) r.grads.push_back(t.grad());
      return r;
    };
    const Result c = step(Device::cpu()), g = step(test::gpu());
    const std::string what = std::string("network ") + dtype_name(dt);
    expect_near_cpu(g.loss, c.loss, test::tol_for(dt), what + " loss");
    expect_near_cpu(g.running_mean, c.running_mean, test::tol_for(dt), what + " running mean");
    for (size_t i = 0; i < c.grads.size(); ++i) {
      ASSERT_TRUE(g.grads[i].defined()) << what << " parameter " << i;
      // Gradients pass through several reductions: a looser bound in f32.
      const double tol = dt == DType::f64 ? 1e-10 : 1e-4;
      expect_near_cpu(g.grads[i], c.grads[i], tol,
                      what + " grad of parameter " + std::to_string(i));
    }
  }
}
