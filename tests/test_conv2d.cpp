#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "gradcheck.h"
#include "kernels/conv2d.h"
#include "layers/functional.h"

using namespace tranq;

namespace {

struct Config {
  std::string name;
  Shape x, w;
  ops::Conv2dParams p;
  bool bias;
};

kernels::Conv2dParams to_kernel(const ops::Conv2dParams& p) {
  return {p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w, p.groups};
}

ops::Conv2dParams params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh = 1,
                         int64_t dw = 1, int64_t groups = 1) {
  ops::Conv2dParams p;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw;
  p.dilation_h = dh, p.dilation_w = dw, p.groups = groups;
  return p;
}

// Small shapes covering every code path: im2col, pointwise (no im2col), grouped, depthwise.
std::vector<Config> configs() {
  return {
      {"3x3_pad1", {2, 3, 5, 5}, {4, 3, 3, 3}, params(1, 1, 1, 1), true},
      {"stride2_pad1", {2, 3, 6, 5}, {4, 3, 3, 3}, params(2, 2, 1, 1), true},
      {"dilation2", {1, 2, 7, 6}, {3, 2, 3, 3}, params(1, 1, 2, 1, 2, 2), false},
      {"groups2", {2, 4, 5, 4}, {6, 2, 3, 3}, params(1, 1, 1, 1, 1, 1, 2), true},
      {"depthwise", {2, 4, 5, 5}, {4, 1, 3, 3}, params(1, 1, 1, 1, 1, 1, 4), true},
      {"depthwise_x2_stride2", {1, 3, 6, 7}, {6, 1, 3, 3}, params(2, 2, 1, 1, 1, 1, 3), false},
      {"pointwise", {2, 5, 3, 4}, {3, 5, 1, 1}, params(1, 1, 0, 0), true},
      {"pointwise_stride2", {2, 4, 5, 5}, {3, 4, 1, 1}, params(2, 2, 0, 0), false},
      {"nonsquare", {2, 3, 6, 5}, {2, 3, 3, 2}, params(2, 1, 1, 0), true},
      {"no_bias_big_pad", {1, 2, 4, 4}, {3, 2, 3, 3}, params(1, 2, 2, 3), false},
      // Output rows of half a vector (8 floats, 4 doubles with AVX-512): split vector loads.
      {"rows_of_8", {1, 2, 8, 8}, {3, 2, 3, 3}, params(1, 1, 1, 1), true},
      {"rows_of_4", {2, 2, 4, 4}, {3, 2, 3, 3}, params(1, 1, 1, 1), false},
      {"odd_rows_of_8", {1, 2, 5, 8}, {3, 2, 3, 3}, params(1, 1, 1, 1), true},
      {"odd_rows_of_4", {1, 2, 3, 4}, {3, 2, 3, 3}, params(1, 1, 1, 1), false},
  };
}

// The 7-loop definition, in double, written independently of the library's index helpers.
std::vector<double> naive_forward(const std::vector<double>& x, const Shape& xs,
                                  const std::vector<double>& w, const Shape& ws,
                                  const std::vector<double>* b, const ops::Conv2dParams& p,
                                  Shape* ys) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], KH = ws[2],
                KW = ws[3];
  const int64_t OH = (H + 2 * p.pad_h - p.dilation_h * (KH - 1) - 1) / p.stride_h + 1;
  const int64_t OW = (W + 2 * p.pad_w - p.dilation_w * (KW - 1) - 1) / p.stride_w + 1;
  const int64_t Og = O / p.groups;
  *ys = {N, O, OH, OW};
  std::vector<double> y(static_cast<size_t>(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = b ? (*b)[o] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ci = (o / Og) * Cg + c;
                s += x[((n * C + ci) * H + ih) * W + iw] * w[((o * Cg + c) * KH + kh) * KW + kw];
              }
          y[((n * O + o) * OH + oh) * OW + ow] = s;
        }
  (void)C;
  return y;
}

// Adjoints of naive_forward: the same loops with the multiply-add scattered.
void naive_backward(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                    const Shape& ws, const std::vector<double>& dy, const ops::Conv2dParams& p,
                    std::vector<double>* dx, std::vector<double>* dw) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], KH = ws[2],
                KW = ws[3];
  const int64_t OH = (H + 2 * p.pad_h - p.dilation_h * (KH - 1) - 1) / p.stride_h + 1;
  const int64_t OW = (W + 2 * p.pad_w - p.dilation_w * (KW - 1) - 1) / p.stride_w + 1;
  const int64_t Og = O / p.groups;
  dx->assign(x.size(), 0.0);
  dw->assign(w.size(), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t xi = ((n * C + (o / Og) * Cg + c) * H + ih) * W + iw;
                const int64_t wi = ((o * Cg + c) * KH + kh) * KW + kw;
                const double g = dy[((n * O + o) * OH + oh) * OW + ow];
                (*dx)[xi] += g * w[wi];
                (*dw)[wi] += g * x[xi];
              }
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * std::max(1.0, std::fabs(want[i])))
        << what << " element " << i;
  }
}

using test::bitwise_equal;

// Forward and all three gradients through the kernels against the naive loops.
void check_against_naive(const Config& cfg, DType dtype, double tol) {
  SCOPED_TRACE(cfg.name + (dtype == DType::f32 ? " f32" : " f64"));
  Tensor x = test::random_tensor(cfg.x, 1), w = test::random_tensor(cfg.w, 2);
  Tensor b = test::random_tensor({cfg.w[0]}, 3);
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(),
                            bv = b.to_vector<double>();
  Shape ys;
  const std::vector<double> want =
      naive_forward(xv, cfg.x, wv, cfg.w, cfg.bias ? &bv : nullptr, cfg.p, &ys);
  Tensor y = ops::conv2d(x.to(dtype), w.to(dtype), cfg.bias ? b.to(dtype) : Tensor(), cfg.p);
  ASSERT_EQ(y.shape(), ys);
  EXPECT_EQ(y.dtype(), dtype);
  expect_close(y.to(DType::f64).to_vector<double>(), want, tol, "forward");

  Tensor dy = test::random_tensor(ys, 4);
  std::vector<double> want_dx, want_dw;
  naive_backward(xv, cfg.x, wv, cfg.w, dy.to_vector<double>(), cfg.p, &want_dx, &want_dw);
  const auto kp = to_kernel(cfg.p);
  Tensor dx = Tensor::full(cfg.x, 7.0, dtype), dw = Tensor::full(cfg.w, 7.0, dtype);
  kernels::conv2d_backward_data(dy.to(dtype), w.to(dtype), dx, kp);
  kernels::conv2d_backward_weight(x.to(dtype), dy.to(dtype), dw, kp);
  expect_close(dx.to(DType::f64).to_vector<double>(), want_dx, tol, "backward data");
  expect_close(dw.to(DType::f64).to_vector<double>(), want_dw, tol, "backward weight");
  Tensor db = Tensor::full({cfg.w[0]}, 7.0, dtype);
  kernels::conv2d_backward_bias(dy.to(dtype), db);
  const std::vector<double> dyv = dy.to_vector<double>();
  std::vector<double> want_db(static_cast<size_t>(cfg.w[0]), 0.0);
  const int64_t per = ys[2] * ys[3];
  for (size_t i = 0; i < dyv.size(); ++i) want_db[(i / per) % ys[1]] += dyv[i];
  expect_close(db.to(DType::f64).to_vector<double>(), want_db, tol, "backward bias");
}

}  // namespace

TEST(Conv2d, ForwardAndBackwardMatchNaiveLoops) {
  for (const Config& cfg : configs()) {
    check_against_naive(cfg, DType::f64, 1e-12);
    check_against_naive(cfg, DType::f32, 1e-5);
  }
}

TEST(Conv2d, LargerShapesTakeEveryParallelPath) {
  // Batch 1 (threads cooperate inside an image), batch 5 (images spread over threads), and a
  // wide image whose im2col matrix is split into row chunks.
  const std::vector<Config> big = {
      {"batch1", {1, 8, 9, 10}, {6, 8, 3, 3}, params(1, 1, 1, 1), true},
      {"batch5", {5, 8, 9, 10}, {6, 8, 3, 3}, params(2, 1, 1, 1), true},
      {"row_chunks", {2, 64, 3, 240}, {4, 64, 3, 3}, params(1, 1, 1, 1), false},
      {"pointwise_batch1", {1, 16, 8, 8}, {12, 16, 1, 1}, params(1, 1, 0, 0), true},
      {"depthwise_batch3", {3, 16, 9, 9}, {16, 1, 5, 5}, params(1, 1, 2, 2, 1, 1, 16), true},
      // Output rows of whole vectors (written in place), a partial transpose block (20).
      {"wide_rows_stride2", {2, 4, 32, 32}, {20, 4, 3, 3}, params(2, 2, 1, 1), true},
      {"wide_rows_stride1", {1, 8, 16, 16}, {16, 8, 3, 3}, params(1, 1, 1, 1), false},
      {"stride3_dilation2", {1, 3, 11, 13}, {5, 3, 3, 3}, params(3, 2, 2, 1, 2, 1), true},
      {"pointwise_stride2_pad", {2, 6, 7, 7}, {9, 6, 1, 1}, params(2, 2, 1, 1), false},
      {"kernel5_groups2", {2, 4, 9, 8}, {6, 2, 5, 5}, params(1, 2, 2, 1, 1, 1, 2), true},
  };
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (const Config& cfg : big) {
      check_against_naive(cfg, DType::f64, 1e-12);
      check_against_naive(cfg, DType::f32, 1e-4);
    }
  }
  set_num_threads(2);
}

TEST(Conv2d, GradientsMatchFiniteDifferences) {
  for (const Config& cfg : configs()) {
    SCOPED_TRACE(cfg.name);
    Tensor x = test::random_tensor(cfg.x, 11), w = test::random_tensor(cfg.w, 12);
    std::vector<Tensor> inputs{x, w};
    if (cfg.bias) inputs.push_back(test::random_tensor({cfg.w[0]}, 13));
    for (Tensor& t : inputs) t.set_requires_grad(true);
    const ops::Conv2dParams p = cfg.p;
    test::expect_gradients_match(
        [p](const std::vector<Tensor>& in) {
          return ops::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p);
        },
        inputs);
  }
}

TEST(Conv2d, PinnedTinyExample) {
  // x = 1..9 as a 3x3 image, w = [[1,2],[3,4]], bias 0.5, no padding:
  //   y[0][0] = 1*1 + 2*2 + 3*4 + 4*5 + 0.5 = 37.5, and each step right adds 10, down adds 30.
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor b = Tensor::from_vector<double>({0.5}, {1});
  for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
  Tensor y = ops::conv2d(x, w, b, ops::Conv2dParams{});
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{37.5, 47.5, 67.5, 77.5}));
  ops::sum(y).backward();
  // d(sum y)/dx: how many windows see each pixel, weighted by the tap that sees it.
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4}));
  // d(sum y)/dw[kh][kw]: the sum of the 2x2 block of x that tap sees.
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{12, 16, 24, 28}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{4}));

  // Stride 2 with padding 1 on the same image (f32): windows centred on the corners.
  Tensor w3 = Tensor::from_vector<float>({0, 0, 0, 0, 1, 0, 0, 0, -1}, {1, 1, 3, 3});
  Tensor y2 = ops::conv2d(x.detach().to(DType::f32), w3, Tensor(), params(2, 2, 1, 1));
  // y = x[ih][iw] - x[ih+1][iw+1] with zero padding: (1-5), (3-0), (7-0), (9-0).
  EXPECT_EQ(y2.to_vector<float>(), (std::vector<float>{-4, 3, 7, 9}));
}

TEST(Conv2d, OnlyRequestedGradientsAreComputed) {
  Tensor x = test::random_tensor({2, 3, 5, 5}, 1), w = test::random_tensor({4, 3, 3, 3}, 2);
  w.set_requires_grad(true);
  ops::sum(ops::conv2d(x, w, Tensor(), params(1, 1, 1, 1))).backward();
  EXPECT_FALSE(x.grad().defined());
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().shape(), (Shape{4, 3, 3, 3}));
}

TEST(Conv2d, BadShapesAndDtypesThrowValueError) {
  Tensor x = Tensor::zeros({2, 4, 5, 5}), w = Tensor::zeros({6, 4, 3, 3});
  const ops::Conv2dParams p;
  EXPECT_THROW(ops::conv2d(x, Tensor::zeros({6, 3, 3, 3}), Tensor(), p), ValueError);  // C
  EXPECT_THROW(ops::conv2d(x, w.to(DType::f64), Tensor(), p), ValueError);             // dtype
  EXPECT_THROW(ops::conv2d(x, w, Tensor::zeros({5}), p), ValueError);                  // bias
  EXPECT_THROW(ops::conv2d(x, w, Tensor::zeros({6}, DType::f64), p), ValueError);
  EXPECT_THROW(ops::conv2d(Tensor::zeros({4, 5, 5}), w, Tensor(), p), ValueError);     // 3-D
  EXPECT_THROW(ops::conv2d(x, Tensor::zeros({6, 4, 7, 7}), Tensor(), p), ValueError);  // > input
  EXPECT_THROW(ops::conv2d(x, Tensor::zeros({6, 2, 3, 3}), Tensor(), params(1, 1, 0, 0, 1, 1, 3)),
               ValueError);  // groups must divide channels
  EXPECT_THROW(ops::conv2d(x, w, Tensor(), params(0, 1, 0, 0)), ValueError);  // stride 0
  EXPECT_THROW(ops::conv2d(x.to(DType::i32), w.to(DType::i32), Tensor(), p), ValueError);
  // An empty image, even where padding would give a non-empty output.
  EXPECT_THROW(ops::conv2d(Tensor::zeros({2, 4, 0, 5}), w, Tensor(), params(1, 1, 2, 2)),
               ValueError);
  EXPECT_NO_THROW(ops::conv2d(Tensor::zeros({0, 4, 5, 5}), w, Tensor(), p));  // empty batch
  // Kernel-level output shape mismatch.
  const kernels::Conv2dParams kp;
  EXPECT_THROW(kernels::conv2d_forward(x, w, Tensor(), Tensor::zeros({2, 6, 4, 4}), kp),
               ValueError);
  EXPECT_THROW(kernels::conv2d_backward_weight(x, Tensor::zeros({2, 6, 3, 3}),
                                               Tensor::zeros({6, 4, 3, 3}, DType::f64), kp),
               ValueError);
}

TEST(Conv2d, BitwiseReproducible) {
  // A ResNet-like block shape in f32, large enough that every thread gets work.
  Tensor x = test::random_tensor({8, 16, 12, 12}, 5, -1, 1, DType::f32);
  Tensor w = test::random_tensor({16, 16, 3, 3}, 6, -1, 1, DType::f32);
  Tensor dy = test::random_tensor({8, 16, 12, 12}, 7, -1, 1, DType::f32);
  const kernels::Conv2dParams kp{1, 1, 1, 1, 1, 1, 1};
  auto run = [&] {
    std::vector<Tensor> r{Tensor::empty_like(dy), Tensor::empty_like(x), Tensor::empty_like(w),
                          Tensor::empty({16}, DType::f32)};
    kernels::conv2d_forward(x, w, Tensor(), r[0], kp);
    kernels::conv2d_backward_data(dy, w, r[1], kp);
    kernels::conv2d_backward_weight(x, dy, r[2], kp);
    kernels::conv2d_backward_bias(dy, r[3]);
    return r;
  };
  const auto a = run(), b = run();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(bitwise_equal(a[i], b[i])) << "output " << i;
}
