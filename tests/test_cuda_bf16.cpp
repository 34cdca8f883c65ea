// bf16 compute precision on CUDA against the CPU's bf16 results (tests/test_bf16.cpp pins the
// CPU to the fp32 kernels on rounded operands).
//
// Tolerance. The rounding kernel is the CPU's scalar function: bit for bit. GEMMs and
// convolutions multiply the same bf16 operands exactly on both sides (cuBLAS bf16 GEMMs with
// f32 compute; cuDNN f32 convolutions on bf16-valued operands, whose TF32 tensor-core products
// are exact) and only sum in another order, so each element may differ by a few units of
// 2^-24 per term relative to the sum of magnitudes: |gpu - cpu| <= kTol * S + 1e-30 with
// S = sum |a_r||b_r| (the same op on the absolute values of the rounded operands, plus
// |beta c| for GEMMs) and kTol = 1e-5 (k * 2^-24 stays below it for the k < 160 used here;
// an operand left unrounded on one side, or bf16 sums, would miss it by orders of magnitude).
//
// Without a GPU every test skips with the runtime's reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cuda_test_util.h"
#include "gradcheck.h"
#include "kernels/bf16.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "layers/compute_precision.h"
#include "layers/conv2d.h"
#include "layers/functional.h"
#include "layers/linear.h"
#include "tranq/config.h"

// Skips without a device; registers the backend and the CUDA ops' hooks otherwise.
#if TRANQ_WITH_CUDA
#define TRANQ_REQUIRE_CUDA_BF16()                \
  do {                                           \
    TRANQ_REQUIRE_CUDA();                        \
    ::tranq::kernels::cuda::register_cuda_ops(); \
  } while (0)
#else
#define TRANQ_REQUIRE_CUDA_BF16() TRANQ_REQUIRE_CUDA()
#endif

namespace tranq {
namespace {

using test::random_tensor;
using test::to_cuda;
using test::to_host;

constexpr double kTol = 1e-5;
constexpr ComputePrecision kBf16 = ComputePrecision::bf16;

Tensor rand_f32(const Shape& s, uint64_t seed) {
  return random_tensor(s, seed, -1.0, 1.0, DType::f32);
}

// |t| of a rounded copy: the operands of the error bound.
Tensor abs_rounded(const Tensor& t) {
  Tensor r = kernels::bf16_rounded_copy(t.contiguous(), "test", "t");
  float* p = r.data<float>();
  for (int64_t i = 0; i < r.numel(); ++i) p[i] = std::fabs(p[i]);
  return r;
}

// Every |gpu - cpu| within kTol * bound (bound >= 0 elementwise, on the host).
void expect_close(const Tensor& gpu, const Tensor& cpu, const Tensor& bound, const char* what) {
  Tensor g = to_host(gpu).contiguous(), c = cpu.contiguous(), b = bound.contiguous();
  ASSERT_EQ(g.shape(), c.shape()) << what;
  int64_t bad = 0;
  for (int64_t i = 0; i < c.numel(); ++i) {
    const double gv = g.data<float>()[i], cv = c.data<float>()[i], bv = b.data<float>()[i];
    if (!(std::fabs(gv - cv) <= kTol * bv + 1e-30) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: gpu " << gv << " cpu " << cv << " bound "
                    << kTol * bv;
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST(CudaBf16, RoundingMatchesCpuBitForBit) {
  TRANQ_REQUIRE_CUDA_BF16();
  const int64_t n = 1 << 16;
  Rng rng(3);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = static_cast<uint32_t>(rng.next_u64());
    if (i % 64 == 0) u = (u & 0xffff0000u) | 0x8000u;  // exact ties
    std::memcpy(&v[static_cast<size_t>(i)], &u, 4);
  }
  for (float s : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::denorm_min(), -0.0f})
    v.push_back(s);
  Tensor x = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  Tensor cpu = Tensor::empty(x.shape());
  kernels::round_to_bf16(x, cpu);
  Tensor gx = to_cuda(x), gpu = Tensor::empty(x.shape(), DType::f32, Device::cuda());
  kernels::round_to_bf16(gx, gpu);
  EXPECT_TRUE(test::same_bits(gpu, cpu))
      << "first difference at " << test::first_difference(gpu, cpu);
  kernels::round_to_bf16(gx, gx);  // in place
  EXPECT_TRUE(test::same_bits(gx, cpu));
}

TEST(CudaBf16, GemmMatchesCpu) {
  TRANQ_REQUIRE_CUDA_BF16();
  const int64_t m = 33, k = 150, n = 47;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (double beta : {0.0, 1.0}) {
        SCOPED_TRACE("ta " + std::to_string(ta) + " tb " + std::to_string(tb) + " beta " +
                     std::to_string(beta));
        Tensor a = rand_f32(ta ? Shape{k, m} : Shape{m, k}, 1 + ta);
        Tensor b = rand_f32(tb ? Shape{n, k} : Shape{k, n}, 3 + tb);
        Tensor c0 = rand_f32({m, n}, 5);
        Tensor cpu = c0.clone(), gpu = to_cuda(c0);
        kernels::gemm(ta, tb, 1.0, a, b, beta, cpu, kBf16);
        kernels::gemm(ta, tb, 1.0, to_cuda(a), to_cuda(b), beta, gpu, kBf16);
        Tensor bound = Tensor::empty({m, n});
        kernels::gemm(ta, tb, 1.0, abs_rounded(a), abs_rounded(b), 0.0, bound);
        if (beta != 0.0) {
          float* p = bound.data<float>();
          for (int64_t i = 0; i < bound.numel(); ++i) p[i] += std::fabs(c0.data<float>()[i]);
        }
        expect_close(gpu, cpu, bound, "gemm");
        // And it is bf16, not fp32: the fp32 product differs by far more than the tolerance.
        Tensor fp32 = Tensor::empty({m, n});
        kernels::gemm(ta, tb, 1.0, a, b, 0.0, fp32);
        if (beta == 0.0) {
          const Tensor hg = to_host(gpu);
          double worst = 0;
          for (int64_t i = 0; i < fp32.numel(); ++i)
            worst = std::max(
                worst, std::fabs(static_cast<double>(fp32.data<float>()[i]) - hg.data<float>()[i]) /
                           bound.data<float>()[i]);
          EXPECT_GT(worst, 10 * kTol);
        }
      }
}

TEST(CudaBf16, Conv2dMatchesCpu) {
  TRANQ_REQUIRE_CUDA_BF16();
  TRANQ_SKIP_WITHOUT_CUDNN();
  struct Case {
    Shape x, w;
    kernels::Conv2dParams p;
  };
  const Case cases[] = {{{2, 3, 9, 8}, {5, 3, 3, 3}, {1, 1, 1, 1, 1, 1, 1}},
                        {{3, 16, 11, 10}, {8, 16, 3, 3}, {2, 2, 1, 1, 1, 1, 1}},
                        {{2, 4, 9, 9}, {6, 2, 3, 2}, {1, 2, 0, 1, 2, 1, 2}},
                        {{2, 6, 7, 7}, {6, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 6}}};
  int idx = 0;
  for (const Case& cc : cases) {
    SCOPED_TRACE("case " + std::to_string(idx));
    const uint64_t s = 200 + 10 * static_cast<uint64_t>(idx++);
    Tensor x = rand_f32(cc.x, s), w = rand_f32(cc.w, s + 1), bias = rand_f32({cc.w[0]}, s + 2);
    const Shape ys = kernels::conv2d_output_shape(cc.x, cc.w, cc.p);
    Tensor dy = rand_f32(ys, s + 3);
    Tensor zero_bias = Tensor::zeros({cc.w[0]});

    Tensor y = Tensor::empty(ys), gy = Tensor::empty(ys, DType::f32, Device::cuda());
    kernels::conv2d_forward(x, w, bias, y, cc.p, kBf16);
    kernels::conv2d_forward(to_cuda(x), to_cuda(w), to_cuda(bias), gy, cc.p, kBf16);
    Tensor by = Tensor::empty(ys);
    // |bias| too: the GPU adds the bias after the sum, the CPU starts the sum from it.
    kernels::conv2d_forward(abs_rounded(x), abs_rounded(w), abs_rounded(bias), by, cc.p);
    expect_close(gy, y, by, "forward");

    Tensor dx = Tensor::empty(cc.x), gdx = Tensor::empty(cc.x, DType::f32, Device::cuda());
    kernels::conv2d_backward_data(dy, w, dx, cc.p, kBf16);
    kernels::conv2d_backward_data(to_cuda(dy), to_cuda(w), gdx, cc.p, kBf16);
    Tensor bdx = Tensor::empty(cc.x);
    kernels::conv2d_backward_data(abs_rounded(dy), abs_rounded(w), bdx, cc.p);
    expect_close(gdx, dx, bdx, "backward_data");

    Tensor dw = Tensor::empty(cc.w), gdw = Tensor::empty(cc.w, DType::f32, Device::cuda());
    kernels::conv2d_backward_weight(x, dy, dw, cc.p, kBf16);
    kernels::conv2d_backward_weight(to_cuda(x), to_cuda(dy), gdw, cc.p, kBf16);
    Tensor bdw = Tensor::empty(cc.w);
    kernels::conv2d_backward_weight(abs_rounded(x), abs_rounded(dy), bdw, cc.p);
    expect_close(gdw, dw, bdw, "backward_weight");
  }
}

TEST(CudaBf16, LayersMatchCpu) {
  TRANQ_REQUIRE_CUDA_BF16();
  TRANQ_SKIP_WITHOUT_CUDNN();
  // The same layer on both devices (same seed), in bf16: outputs and gradients agree within
  // the tolerance of the products they come from; bounds from the fp32 ops on |operands|.
  Linear cl(40, 6, true, DType::f32, 7), gl(40, 6, true, DType::f32, 7);
  Conv2d cc(3, 5, 3, 1, 1, 1, 1, true, DType::f32, 8), gc(3, 5, 3, 1, 1, 1, 1, true, DType::f32, 8);
  gl.to(Device::cuda());
  gc.to(Device::cuda());
  for (Module* m : std::initializer_list<Module*>{&cl, &gl, &cc, &gc})
    set_compute_precision(*m, kBf16);
  Tensor x = rand_f32({4, 40}, 9), xi = rand_f32({2, 3, 6, 6}, 10);
  Tensor yl = cl.forward(x), ygl = gl.forward(to_cuda(x));
  Tensor yc = cc.forward(xi), ygc = gc.forward(to_cuda(xi));
  Tensor bl = Tensor::empty({4, 6});
  kernels::gemm(false, true, 1.0, abs_rounded(x), abs_rounded(cl.weight().detach()), 0.0, bl);
  Tensor bc = Tensor::empty(yc.shape());
  kernels::conv2d_forward(abs_rounded(xi), abs_rounded(cc.weight().detach()), Tensor(), bc,
                          {1, 1, 1, 1, 1, 1, 1});
  // The bias adds one rounding of its own on both sides: widen by |bias| via the bound.
  auto add_abs_bias = [](Tensor& bound, const Tensor& bias, int64_t per) {
    float* p = bound.data<float>();
    const float* b = bias.data<float>();
    for (int64_t i = 0; i < bound.numel(); ++i) p[i] += std::fabs(b[(i / per) % bias.numel()]);
  };
  add_abs_bias(bl, cl.bias().detach(), 1);
  add_abs_bias(bc, cc.bias().detach(), 36);
  expect_close(ygl.detach(), yl.detach(), bl, "Linear forward");
  expect_close(ygc.detach(), yc.detach(), bc, "Conv2d forward");
  // Gradients: sum(y) backward, so dL/dy = 1 on both sides.
  ops::sum(yl).backward();
  ops::sum(ygl).backward();
  ops::sum(yc).backward();
  ops::sum(ygc).backward();
  Tensor bwl = Tensor::empty({6, 40});
  kernels::gemm(true, false, 1.0, Tensor::ones({4, 6}), abs_rounded(x), 0.0, bwl);
  expect_close(gl.weight().grad(), cl.weight().grad(), bwl, "Linear weight grad");
  Tensor bwc = Tensor::empty(cc.weight().shape());
  kernels::conv2d_backward_weight(abs_rounded(xi), Tensor::ones(yc.shape()), bwc,
                                  {1, 1, 1, 1, 1, 1, 1});
  expect_close(gc.weight().grad(), cc.weight().grad(), bwc, "Conv2d weight grad");
}

TEST(CudaBf16, RejectsF64) {
  TRANQ_REQUIRE_CUDA_BF16();
  Tensor a = Tensor::zeros({2, 3}, DType::f64, Device::cuda());
  Tensor b = Tensor::zeros({3, 2}, DType::f64, Device::cuda());
  Tensor c = Tensor::zeros({2, 2}, DType::f64, Device::cuda());
  EXPECT_THROW(kernels::gemm(false, false, 1.0, a, b, 0.0, c, kBf16), ValueError);
  Tensor x = Tensor::zeros({1, 2, 4, 4}, DType::f64, Device::cuda());
  Tensor w = Tensor::zeros({3, 2, 3, 3}, DType::f64, Device::cuda());
  Tensor y = Tensor::zeros({1, 3, 2, 2}, DType::f64, Device::cuda());
  EXPECT_THROW(kernels::conv2d_forward(x, w, Tensor(), y, {}, kBf16), ValueError);
  EXPECT_THROW(kernels::conv2d_backward_data(y, w, x, {}, kBf16), ValueError);
  EXPECT_THROW(kernels::conv2d_backward_weight(x, y, w, {}, kBf16), ValueError);
}

}  // namespace
}  // namespace tranq
