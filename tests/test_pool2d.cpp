#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "gradcheck.h"
#include "kernels/pool2d.h"
#include "layers/functional.h"

using namespace tranq;

namespace {

// Naive pooling over the padded input; padding is -inf for max and 0 (counted) for avg.
std::vector<double> reference_pool(const Tensor& x, const ops::Pool2dParams& p, bool is_max,
                                   Shape* out_shape) {
  const std::vector<double> v = x.to(DType::f64).to_vector<double>();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = (h + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1;
  const int64_t ow = (w + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
  *out_shape = {n, c, oh, ow};
  std::vector<double> out;
  for (int64_t pl = 0; pl < n * c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t a = 0; a < p.kernel_h; ++a)
          for (int64_t b = 0; b < p.kernel_w; ++b) {
            const int64_t hh = i * p.stride_h - p.pad_h + a, ww = j * p.stride_w - p.pad_w + b;
            const bool inside = hh >= 0 && hh < h && ww >= 0 && ww < w;
            const double val = inside ? v[(pl * h + hh) * w + ww]
                                      : (is_max ? -std::numeric_limits<double>::infinity() : 0.0);
            acc = is_max ? std::max(acc, val) : acc + val;
          }
        out.push_back(is_max ? acc : acc / static_cast<double>(p.kernel_h * p.kernel_w));
      }
  return out;
}

std::vector<ops::Pool2dParams> cases() {
  ops::Pool2dParams k3s2p1{3, 3, 2, 2, 1, 1};
  ops::Pool2dParams k2s2{2, 2, 2, 2, 0, 0};
  ops::Pool2dParams rect{2, 3, 1, 2, 1, 1};  // non-square kernel, unequal strides
  return {k3s2p1, k2s2, rect};
}

void expect_close(const Tensor& t, const std::vector<double>& ref, double tol) {
  const std::vector<double> got = t.to(DType::f64).to_vector<double>();
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], tol) << "element " << i;
}

}  // namespace

TEST(Pool2d, MaxAndAvgMatchNaiveLoops) {
  int seed = 0;
  for (const ops::Pool2dParams& p : cases()) {
    for (Shape shape : {Shape{2, 3, 7, 9}, Shape{1, 2, 6, 8}}) {
      for (DType dt : {DType::f64, DType::f32}) {
        Tensor x = test::random_tensor(shape, ++seed, -2.0, 2.0, dt);
        Shape ms, as;
        const std::vector<double> mref = reference_pool(x, p, true, &ms);
        const std::vector<double> aref = reference_pool(x, p, false, &as);
        Tensor ym = ops::max_pool2d(x, p), ya = ops::avg_pool2d(x, p);
        EXPECT_EQ(ym.shape(), ms);
        EXPECT_EQ(ya.shape(), as);
        EXPECT_EQ(ym.dtype(), dt);
        expect_close(ym, mref, 0.0);  // a max is exact
        expect_close(ya, aref, dt == DType::f64 ? 1e-12 : 1e-6);
      }
    }
  }
}

TEST(Pool2d, HandPinnedValues) {
  // 4x4 plane 0..15, kernel 2 stride 2: maxima are the bottom-right corners, means the centres.
  std::vector<double> v(16);
  for (int i = 0; i < 16; ++i) v[i] = i;
  Tensor x = Tensor::from_vector(v, {1, 1, 4, 4});
  ops::Pool2dParams p{2, 2, 2, 2, 0, 0};
  EXPECT_EQ(ops::max_pool2d(x, p).to_vector<double>(), (std::vector<double>{5, 7, 13, 15}));
  EXPECT_EQ(ops::avg_pool2d(x, p).to_vector<double>(), (std::vector<double>{2.5, 4.5, 10.5, 12.5}));
  // kernel 3 stride 2 pad 1 with count_include_pad: the corner window holds 0,1,4,5 -> 10/9.
  ops::Pool2dParams q{3, 3, 2, 2, 1, 1};
  const std::vector<double> a = ops::avg_pool2d(x, q).to_vector<double>();
  ASSERT_EQ(a.size(), 4u);
  EXPECT_DOUBLE_EQ(a[0], 10.0 / 9.0);
  EXPECT_EQ(ops::max_pool2d(x, q).to_vector<double>(), (std::vector<double>{5, 7, 13, 15}));
}

TEST(Pool2d, MaxBackwardRoutesToArgmax) {
  // The max of each window gets the whole gradient; ties are impossible here.
  Tensor x = Tensor::from_vector<double>({1, 9, 2, 3, 4, 0, 8, 7, 5, 6, -1, -2, 0.5, 1.5, 2.5, 3.5},
                                         {1, 1, 4, 4})
                 .set_requires_grad(true);
  ops::Pool2dParams p{2, 2, 2, 2, 0, 0};
  Tensor y = ops::max_pool2d(x, p);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{9, 8, 6, 3.5}));
  y.backward(Tensor::from_vector<double>({10, 20, 30, 40}, {1, 1, 2, 2}));
  EXPECT_EQ(x.grad().to_vector<double>(),
            (std::vector<double>{0, 10, 0, 0, 0, 0, 20, 0, 0, 30, 0, 0, 0, 0, 0, 40}));
}

TEST(Pool2d, OverlappingWindowsAccumulateGradient) {
  // Kernel 3 stride 1: the global maximum sits in every window and collects every gradient.
  std::vector<double> v(25, 0.0);
  for (int i = 0; i < 25; ++i) v[i] = -static_cast<double>(i) * 0.01;
  v[12] = 100;  // centre
  Tensor x = Tensor::from_vector(v, {1, 1, 5, 5}).set_requires_grad(true);
  ops::sum(ops::max_pool2d(x, {3, 3, 1, 1, 0, 0})).backward();
  EXPECT_EQ(x.grad().to_vector<double>()[12], 9.0);
}

TEST(Pool2d, Gradients) {
  int seed = 100;
  for (const ops::Pool2dParams& p : cases()) {
    // Distinct random values: max pooling has no ties.
    Tensor x = test::random_tensor({2, 2, 5, 7}, ++seed);
    x.set_requires_grad(true);
    test::expect_gradients_match(
        [p](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], p); }, {x});
    test::expect_gradients_match(
        [p](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], p); }, {x});
  }
}

TEST(Pool2d, GlobalAvgPool) {
  Tensor x = test::random_tensor({2, 3, 4, 5}, 7);
  Tensor y = ops::global_avg_pool2d(x);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 1, 1}));
  const std::vector<double> v = x.to_vector<double>(), out = y.to_vector<double>();
  for (int pl = 0; pl < 6; ++pl) {
    double s = 0;
    for (int i = 0; i < 20; ++i) s += v[pl * 20 + i];
    EXPECT_NEAR(out[pl], s / 20, 1e-14);
  }
  Tensor xf = x.to(DType::f32);
  expect_close(ops::global_avg_pool2d(xf), out, 1e-6);

  x.set_requires_grad(true);
  test::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::global_avg_pool2d(in[0]); }, {x});
  Tensor g = Tensor::from_vector<double>({20, 40, 60, 80, 100, 120}, {2, 3, 1, 1});
  x.zero_grad();
  ops::global_avg_pool2d(x).backward(g);
  const std::vector<double> gx = x.grad().to_vector<double>();
  EXPECT_EQ(gx[0], 1.0);
  EXPECT_EQ(gx[119], 6.0);
}

TEST(Pool2d, RejectsBadGeometry) {
  Tensor x = Tensor::zeros({1, 1, 4, 4});
  EXPECT_THROW(ops::max_pool2d(x, {2, 2, 0, 2, 0, 0}), ValueError);  // zero stride
  EXPECT_THROW(ops::max_pool2d(x, {2, 2, 2, 2, 2, 0}), ValueError);  // pad > kernel/2
  EXPECT_THROW(ops::avg_pool2d(x, {5, 5, 1, 1, 0, 0}), ValueError);  // kernel > input
  // An empty image has no element to pick, even where padding gives windows.
  EXPECT_THROW(ops::max_pool2d(Tensor::zeros({1, 1, 0, 4}), {2, 2, 2, 2, 1, 1}), ValueError);
  EXPECT_NO_THROW(ops::max_pool2d(Tensor::zeros({0, 1, 4, 4}), {2, 2, 2, 2, 0, 0}));
  EXPECT_THROW(ops::max_pool2d(Tensor::zeros({4, 4}), {}), ValueError);
  EXPECT_THROW(ops::global_avg_pool2d(Tensor::zeros({2, 3})), ValueError);
}

TEST(Pool2d, MaxBackwardRefusesIndicesOutsideTheirWindow) {
  // Kernel 2 stride 2 on 4x4: output (0, 1) covers rows 0-1, columns 2-3.
  const kernels::Pool2dGeometry g{2, 2, 2, 2, 0, 0};
  const Tensor dy = Tensor::ones({1, 1, 2, 2});
  Tensor dx = Tensor::empty({1, 1, 4, 4});
  const Tensor good = Tensor::from_vector<int32_t>({0, 3, 9, 15}, {1, 1, 2, 2});
  kernels::max_pool2d_backward(dy, good, g, dx);
  EXPECT_EQ(dx.to_vector<float>(),
            (std::vector<float>{1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}));
  for (const std::vector<int32_t>& bad : {std::vector<int32_t>{0, 1, 9, 15},      // column 1
                                          std::vector<int32_t>{0, 3, 9, 16},      // past the plane
                                          std::vector<int32_t>{-1, 3, 9, 15}}) {  // negative
    try {
      kernels::max_pool2d_backward(dy, Tensor::from_vector<int32_t>(bad, {1, 1, 2, 2}), g, dx);
      ADD_FAILURE() << "an index outside its window must be refused";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("outside their pooling window"), std::string::npos)
          << e.what();
    }
  }
  // dy that is not the pooled shape of dx with this geometry.
  EXPECT_THROW(kernels::max_pool2d_backward(Tensor::ones({1, 1, 3, 3}),
                                            Tensor::zeros({1, 1, 3, 3}, DType::i32), g, dx),
               ValueError);
}
