// The fake quantizer: codes and values against a scalar reference written here (its own
// round-half-even), the STE and scale gradients against hand values and the surrogate's
// finite differences, the deterministic reduction, dequantisation and argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "gradcheck.h"
#include "kernels/quantize.h"
#include "quant/fake_quantize.h"
#include "quant_reference.h"

using namespace tranq;
using kernels::QuantRange;

namespace {

using test::ref_code;

// t as the design note defines it: x * (g/|s|) evaluated in T.
template <class T>
T t_of(T x, T s, const QuantRange& r) {
  return x * (static_cast<T>(r.g) / std::fabs(s));
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

Tensor codes_buffer(const QuantRange& r, int64_t n) {
  return Tensor::zeros({n}, r.hi > 127 ? DType::u8 : DType::i8);
}

std::vector<int> codes_of(const Tensor& codes) {
  std::vector<int> out;
  if (codes.dtype() == DType::u8) {
    for (uint8_t c : codes.to_vector<uint8_t>()) out.push_back(c);
  } else {
    for (int8_t c : codes.to_vector<int8_t>()) out.push_back(c);
  }
  return out;
}

// Inputs that hit every tie t = k + 0.5, the clip edges (exactly lo, hi, beyond) and random
// values, for a scale that makes t exact (a power of two) or not.
template <class T>
std::vector<T> probe_inputs(const QuantRange& r, T s, uint64_t seed) {
  std::vector<T> ts;
  for (int k = r.lo - 3; k <= r.hi + 3; ++k) {
    ts.push_back(T(k));
    ts.push_back(T(k) + T(0.5));
    ts.push_back(T(k) + T(0.25));
  }
  ts.push_back(T(r.lo) - T(0.001));
  ts.push_back(T(r.hi) + T(0.001));
  ts.push_back(T(1e6));
  ts.push_back(T(-1e6));
  ts.push_back(T(0.0));
  ts.push_back(-T(0.0));
  std::vector<T> xs;
  for (T t : ts) xs.push_back(t * std::fabs(s) / static_cast<T>(r.g));
  Rng rng(seed);
  for (int i = 0; i < 500; ++i) {
    xs.push_back(static_cast<T>(rng.uniform(-1.5, 1.5) * (r.hi - r.lo) / r.g * std::fabs(s)));
  }
  return xs;
}

template <class T>
void expect_codes_match_reference(const QuantRange& r, T s) {
  const std::vector<T> xs = probe_inputs<T>(r, s, 7);
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x = Tensor::from_vector(xs, {n});
  Tensor scale = Tensor::from_vector(std::vector<T>{s}, {1});
  Tensor y = Tensor::empty_like(x);
  Tensor codes = codes_buffer(r, n);
  kernels::fake_quantize_forward(x, scale, r, y, codes);
  const std::vector<int> cv = codes_of(codes);
  const std::vector<T> yv = y.to_vector<T>();
  for (int64_t i = 0; i < n; ++i) {
    const int want = ref_code(static_cast<double>(t_of(xs[i], s, r)), r);
    ASSERT_EQ(cv[i], want) << "x=" << xs[i] << " t=" << t_of(xs[i], s, r) << " lo=" << r.lo
                           << " hi=" << r.hi << " s=" << s;
    ASSERT_TRUE(same_bits(yv[i], static_cast<T>(want) / static_cast<T>(r.g)))
        << "value must be code/g: " << yv[i] << " vs code " << want;
  }
}

}  // namespace

TEST(QuantRange, WeightAndActivationRanges) {
  for (int b = 2; b <= 8; ++b) {
    const QuantRange w = kernels::weight_range(b);
    EXPECT_EQ(w.lo, -(1 << (b - 1)));
    EXPECT_EQ(w.hi, (1 << (b - 1)) - 1);
    EXPECT_EQ(w.g, float(1 << (b - 1)));
    EXPECT_FALSE(w.binary_sign);
  }
  const QuantRange w1 = kernels::weight_range(1);
  EXPECT_EQ(w1.lo, -1);
  EXPECT_EQ(w1.hi, 1);
  EXPECT_EQ(w1.g, 1.0f);
  EXPECT_TRUE(w1.binary_sign);
  for (int b = 1; b <= 8; ++b) {
    const QuantRange a = kernels::activation_range(b);
    EXPECT_EQ(a.lo, 0);
    EXPECT_EQ(a.hi, (1 << b) - 1);
    EXPECT_EQ(a.g, float(1 << b));
    EXPECT_FALSE(a.binary_sign);
  }
  for (int b : {0, 9, -1, 32}) {
    EXPECT_THROW(kernels::weight_range(b), ValueError) << b;
    EXPECT_THROW(kernels::activation_range(b), ValueError) << b;
  }
}

TEST(FakeQuantize, TiesRoundHalfToEven) {
  // 4-bit weights, s = g: t = x exactly.
  const QuantRange r = kernels::weight_range(4);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = Tensor::from_vector(std::vector<double>{0.5, 1.5, -0.5, -1.5, 2.5, -2.5, 6.5, -7.5,
                                                       7.5, -8.5, 3.49, -3.51},
                                   {12})
                   .to(dt);
    Tensor scale = Tensor::full({1}, 8.0, dt);
    Tensor y = Tensor::empty_like(x);
    Tensor codes = Tensor::empty({12}, DType::i8);
    kernels::fake_quantize_forward(x, scale, r, y, codes);
    EXPECT_EQ(codes_of(codes), (std::vector<int>{0, 2, 0, -2, 2, -2, 6, -8, 7, -8, 3, -4}));
    EXPECT_EQ(
        y.to(DType::f64).to_vector<double>(),
        (std::vector<double>{0, 0.25, 0, -0.25, 0.25, -0.25, 0.75, -1, 0.875, -1, 0.375, -0.5}));
  }
}

TEST(FakeQuantize, CodesMatchScalarReferenceAtEveryBitWidth) {
  for (int b = 1; b <= 8; ++b) {
    for (const QuantRange& r : {kernels::weight_range(b), kernels::activation_range(b)}) {
      SCOPED_TRACE(testing::Message() << "bits " << b << " lo " << r.lo << " hi " << r.hi);
      // Power-of-two scales make the probe's ties exact; 0.37 and -1.3 test the general path
      // and that a negative scale acts as |s|.
      for (double s : {1.0, 0.25, -2.0, 0.37, -1.3}) {
        expect_codes_match_reference<float>(r, static_cast<float>(s));
        expect_codes_match_reference<double>(r, s);
      }
    }
  }
}

TEST(FakeQuantize, BinaryWeightsAreSignAndBinaryActivationsHalf) {
  Tensor x = Tensor::from_vector(std::vector<double>{-0.3, -0.0, 0.0, 1e-30, 5.0, -5.0}, {6});
  Tensor y = Tensor::empty_like(x), codes = Tensor::empty({6}, DType::i8);
  kernels::fake_quantize_forward(x, Tensor::full({1}, 0.5, DType::f64), kernels::weight_range(1), y,
                                 codes);
  EXPECT_EQ(codes_of(codes), (std::vector<int>{-1, 1, 1, 1, 1, -1}));  // -0.0 >= 0
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-1, 1, 1, 1, 1, -1}));
  // Binary activations: codes {0, 1}, values {0, 0.5}; t = 2x/|s| = 0.5 is a tie -> 0.
  Tensor xa = Tensor::from_vector(std::vector<double>{-1.0, 0.24, 0.25, 0.26, 3.0}, {5});
  Tensor ya = Tensor::empty_like(xa), ca = Tensor::empty({5}, DType::i8);
  kernels::fake_quantize_forward(xa, Tensor::full({1}, 1.0, DType::f64),
                                 kernels::activation_range(1), ya, ca);
  EXPECT_EQ(codes_of(ca), (std::vector<int>{0, 0, 0, 1, 1}));
  EXPECT_EQ(ya.to_vector<double>(), (std::vector<double>{0, 0, 0, 0.5, 0.5}));
}

TEST(FakeQuantize, PerChannelScalesAcrossSeveralPieces) {
  // inner = 40000 > kQuantChunk, so each channel spans several pieces.
  const QuantRange r = kernels::weight_range(3);
  const int64_t C = 3, inner = 40000;
  static_assert(kernels::kQuantChunk < 40000, "the test must cross piece borders");
  const std::vector<double> s = {0.5, -0.11, 2.0};
  Tensor x = test::random_tensor({C, 4, inner / 4}, 3, -1.5, 1.5);
  Tensor scale = Tensor::from_vector(s, {C});
  Tensor y = Tensor::empty_like(x), codes = Tensor::empty({C * inner}, DType::i8);
  kernels::fake_quantize_forward(x, scale, r, y, codes);
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const std::vector<int> cv = codes_of(codes);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t i = c * inner; i < (c + 1) * inner; ++i) {
      const int want = ref_code(t_of(xv[i], s[c], r), r);
      ASSERT_EQ(cv[i], want) << "channel " << c << " element " << i;
      ASSERT_EQ(yv[i], want / 4.0);
    }
  }
  // A per-channel scale with one channel equals the per-tensor result.
  Tensor y1 = Tensor::empty_like(x);
  Tensor x1 = x.view({1, C * inner});
  kernels::fake_quantize_forward(x1, Tensor::full({1}, 0.37, DType::f64), r,
                                 y1.view({1, C * inner}), Tensor());
  for (int64_t i = 0; i < C * inner; i += 997) {
    ASSERT_EQ(y1.to_vector<double>()[i], ref_code(t_of(xv[i], 0.37, r), r) / 4.0);
  }
}

TEST(FakeQuantize, BackwardHandExample) {
  // 2-bit weights: lo=-2, hi=1, g=2. s = 0.5: t = 4x, dx slope 1/|s| = 2.
  const QuantRange r = kernels::weight_range(2);
  const std::vector<double> xs = {-0.6, -0.5, -0.1, 0.2, 0.25, 0.3};  // t: -2.4 -2 -0.4 .8 1 1.2
  const std::vector<double> gs = {1, 2, 3, 4, 5, 6};
  for (double s : {0.5, -0.5}) {
    Tensor x = Tensor::from_vector(xs, {6}), dy = Tensor::from_vector(gs, {6});
    Tensor y = Tensor::empty_like(x), codes = Tensor::empty({6}, DType::i8);
    Tensor scale = Tensor::full({1}, s, DType::f64);
    kernels::fake_quantize_forward(x, scale, r, y, codes);
    EXPECT_EQ(codes_of(codes), (std::vector<int>{-2, -2, 0, 1, 1, 1}));
    EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-1, -1, 0, 0.5, 0.5, 0.5}));
    Tensor dx = Tensor::empty_like(x), ds = Tensor::empty({1}, DType::f64);
    kernels::fake_quantize_backward(x, scale, r, dy, dx, ds, 1.0);
    // Outside [lo, hi] (t=-2.4, 1.2) no gradient; edges t=-2 and t=1 are inside.
    EXPECT_EQ(dx.to_vector<double>(), (std::vector<double>{0, 4, 6, 8, 10, 0}));
    // sum_inside dy*x = -1 - 0.3 + 0.8 + 1.25 = 0.75; ds = -sign(s) * 0.75 / 0.25.
    const double want = (s > 0 ? -1 : 1) * 3.0;
    EXPECT_NEAR(ds.item(), want, 1e-14);
    // LSQ scaling: N = 6, Qp = 1.
    EXPECT_DOUBLE_EQ(kernels::lsq_grad_scale_factor(6, r), 1 / std::sqrt(6.0));
    kernels::fake_quantize_backward(x, scale, r, dy, dx, ds, kernels::lsq_grad_scale_factor(6, r));
    EXPECT_NEAR(ds.item(), want / std::sqrt(6.0), 1e-14);
    // Skipping either output works and dx may alias dy.
    Tensor dy2 = dy.clone();
    kernels::fake_quantize_backward(x, scale, r, dy2, dy2, Tensor(), 1.0);
    EXPECT_EQ(dy2.to_vector<double>(), dx.to_vector<double>());
  }
  EXPECT_DOUBLE_EQ(kernels::lsq_grad_scale_factor(100, kernels::weight_range(4)),
                   1 / std::sqrt(700.0));
  EXPECT_DOUBLE_EQ(kernels::lsq_grad_scale_factor(10, kernels::activation_range(2)),
                   1 / std::sqrt(30.0));
}

TEST(FakeQuantize, GradientsEqualDerivativesOfTheStraightThroughSurrogate) {
  // The STE gradients are the exact derivatives of the surrogate clip(g*x/|s|, lo, hi)/g; check
  // them by central differences of that surrogate, with inputs kept off the clip edges.
  for (int b : {1, 2, 4}) {
    for (const QuantRange& r : {kernels::weight_range(b), kernels::activation_range(b)}) {
      const int64_t C = 3, inner = 50;
      const std::vector<double> s = {0.7, -0.4, 1.3};
      std::vector<double> xs =
          test::random_tensor({C * inner}, 11 + b, -1.2, 1.2).to_vector<double>();
      for (int64_t i = 0; i < C * inner; ++i) {
        const double t = t_of(xs[i], s[i / inner], r);
        if (std::fabs(t - r.lo) < 0.05 || std::fabs(t - r.hi) < 0.05) xs[i] += 0.1;
      }
      const std::vector<double> gs = test::random_tensor({C * inner}, 5).to_vector<double>();
      auto loss = [&](const std::vector<double>& xv, const std::vector<double>& sv) {
        double l = 0;
        for (int64_t i = 0; i < C * inner; ++i) {
          const double t = r.g * xv[i] / std::fabs(sv[i / inner]);
          l += gs[i] * std::min(std::max(t, double(r.lo)), double(r.hi)) / r.g;
        }
        return l;
      };
      Tensor x = Tensor::from_vector(xs, {C, inner}), scale = Tensor::from_vector(s, {C});
      Tensor dx = Tensor::empty_like(x), ds = Tensor::empty({C}, DType::f64);
      kernels::fake_quantize_backward(x, scale, r, Tensor::from_vector(gs, {C, inner}), dx, ds,
                                      1.0);
      const std::vector<double> dxv = dx.to_vector<double>(), dsv = ds.to_vector<double>();
      const double h = 1e-6;
      for (int64_t c = 0; c < C; ++c) {
        std::vector<double> sp = s, sm = s;
        sp[c] += h;
        sm[c] -= h;
        EXPECT_NEAR(dsv[c], (loss(xs, sp) - loss(xs, sm)) / (2 * h), 1e-6 * (1 + std::fabs(dsv[c])))
            << "bits " << b << " channel " << c;
      }
      for (int64_t i = 0; i < C * inner; i += 7) {
        std::vector<double> xp = xs, xm = xs;
        xp[i] += h;
        xm[i] -= h;
        EXPECT_NEAR(dxv[i], (loss(xp, s) - loss(xm, s)) / (2 * h), 1e-6) << "element " << i;
      }
    }
  }
}

TEST(FakeQuantize, ScaleReductionEqualsNaiveSumAndIsThreadCountIndependent) {
  const QuantRange r = kernels::weight_range(2);
  const int saved = num_threads();
  for (const Shape& scale_shape : {Shape{1}, Shape{5}}) {
    const int64_t n = 5 * 70001;
    Tensor x = test::random_tensor({5, 70001}, 21, -1.0, 1.0);
    Tensor dy = test::random_tensor({5, 70001}, 22);
    std::vector<double> s = {0.8, -0.6, 1.1, 0.3, 0.9};
    s.resize(static_cast<size_t>(scale_shape[0]));
    Tensor scale = Tensor::from_vector(s, scale_shape);
    const int64_t C = scale_shape[0], inner = n / C;
    // Naive reference: a plain loop in double.
    const std::vector<double> xv = x.to_vector<double>(), gv = dy.to_vector<double>();
    std::vector<double> want(C);
    for (int64_t c = 0; c < C; ++c) {
      double acc = 0;
      for (int64_t i = c * inner; i < (c + 1) * inner; ++i) {
        const double t = t_of(xv[i], s[c], r);
        if (t >= r.lo && t <= r.hi) acc += gv[i] * xv[i];
      }
      want[c] = -(s[c] > 0 ? 1 : -1) * acc / (s[c] * s[c]);
    }
    std::vector<std::vector<double>> per_threads;
    std::vector<std::vector<double>> dx_threads;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      Tensor dx = Tensor::empty_like(x), ds = Tensor::empty(scale_shape, DType::f64);
      kernels::fake_quantize_backward(x, scale, r, dy, dx, ds, 1.0);
      per_threads.push_back(ds.to_vector<double>());
      dx_threads.push_back(dx.to_vector<double>());
    }
    set_num_threads(saved);
    for (int64_t c = 0; c < C; ++c)
      EXPECT_NEAR(per_threads[0][c], want[c], 1e-11 * std::fabs(want[c]) + 1e-12);
    EXPECT_EQ(per_threads[0], per_threads[1]) << "bit-identical for 1 and 2 threads";
    EXPECT_EQ(per_threads[0], per_threads[2]);
    EXPECT_EQ(dx_threads[0], dx_threads[1]);
  }
  // f32 forward outputs are identical too.
  Tensor x = test::random_tensor({300000}, 23, -2, 2, DType::f32);
  Tensor scale = Tensor::full({1}, 0.9, DType::f32);
  std::vector<std::vector<float>> ys;
  std::vector<std::vector<int8_t>> cs;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Tensor y = Tensor::empty_like(x), c = Tensor::empty({300000}, DType::i8);
    kernels::fake_quantize_forward(x, scale, kernels::weight_range(3), y, c);
    ys.push_back(y.to_vector<float>());
    cs.push_back(c.to_vector<int8_t>());
  }
  set_num_threads(saved);
  EXPECT_EQ(ys[0], ys[1]);
  EXPECT_EQ(cs[0], cs[1]);
}

TEST(FakeQuantize, DequantizedCodesEqualFakeQuantValuesBitForBit) {
  for (int b = 1; b <= 8; ++b) {
    for (const QuantRange& r : {kernels::weight_range(b), kernels::activation_range(b)}) {
      for (DType dt : {DType::f32, DType::f64}) {
        Tensor x = test::random_tensor({4, 1000}, 31 + b, -3, 3, dt);
        Tensor scale = test::random_tensor({4}, 32 + b, 0.2, 2.0, dt);
        Tensor y = Tensor::empty_like(x), codes = codes_buffer(r, 4000);
        kernels::fake_quantize_forward(x, scale, r, y, codes);
        Tensor back = Tensor::empty_like(x);
        kernels::dequantize_codes(codes, r, back);
        ASSERT_EQ(std::memcmp(back.raw_data(), y.raw_data(), y.nbytes()), 0)
            << "bits " << b << " lo " << r.lo << " " << dtype_name(dt);
      }
    }
  }
  // Codes that the range cannot produce are rejected.
  Tensor y = Tensor::empty({3}, DType::f32);
  EXPECT_THROW(kernels::dequantize_codes(Tensor::from_vector(std::vector<int8_t>{0, 2, -3}, {3}),
                                         kernels::weight_range(2), y),
               ValueError);
  EXPECT_THROW(kernels::dequantize_codes(Tensor::from_vector(std::vector<int8_t>{1, 0, -1}, {3}),
                                         kernels::weight_range(1), y),
               ValueError);
  EXPECT_THROW(kernels::dequantize_codes(Tensor::from_vector(std::vector<int8_t>{1, -1, 0}, {3}),
                                         kernels::activation_range(2), y),
               ValueError);
}

TEST(FakeQuantizeOp, GradientsReachXAndScale) {
  const QuantRange r = kernels::weight_range(2);
  Tensor x = test::random_tensor({3, 20}, 41, -1, 1).set_requires_grad(true);
  Tensor scale =
      Tensor::from_vector(std::vector<double>{0.6, -0.9, 1.2}, {3}).set_requires_grad(true);
  Tensor g = test::random_tensor({3, 20}, 42);
  Tensor codes = Tensor::empty({60}, DType::i8);
  for (bool lsq : {false, true}) {
    x.zero_grad();
    scale.zero_grad();
    Tensor y = quant::fake_quantize(x, scale, r, lsq, codes);
    y.backward(g);
    Tensor want_y = Tensor::empty_like(x), want_codes = Tensor::empty({60}, DType::i8);
    kernels::fake_quantize_forward(x.detach(), scale.detach(), r, want_y, want_codes);
    EXPECT_EQ(y.to_vector<double>(), want_y.to_vector<double>());
    EXPECT_EQ(codes.to_vector<int8_t>(), want_codes.to_vector<int8_t>());
    Tensor dx = Tensor::empty_like(x), ds = Tensor::empty({3}, DType::f64);
    const double f = lsq ? 1 / std::sqrt(20.0 * r.hi) : 1.0;
    kernels::fake_quantize_backward(x.detach(), scale.detach(), r, g, dx, ds, f);
    EXPECT_EQ(x.grad().to_vector<double>(), dx.to_vector<double>());
    EXPECT_EQ(scale.grad().to_vector<double>(), ds.to_vector<double>());
  }
  // A frozen scale (TRS) gets no gradient; x still does.
  Tensor frozen = Tensor::full({1}, 0.8, DType::f64);
  x.zero_grad();
  quant::fake_quantize(x, frozen, r).backward(g);
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(frozen.grad().defined());
  // No grad anywhere: no graph.
  Tensor plain = test::random_tensor({4}, 43);
  EXPECT_FALSE(quant::fake_quantize(plain, frozen, r).requires_grad());
}

TEST(FakeQuantize, BadInputsThrowValueError) {
  const QuantRange r = kernels::weight_range(2);
  Tensor x = test::random_tensor({3, 4}, 51);
  Tensor s1 = Tensor::full({1}, 0.5, DType::f64);
  Tensor y = Tensor::empty_like(x);
  auto fwd = [&](const Tensor& xx, const Tensor& s, const Tensor& yy, const Tensor& c,
                 const QuantRange& rr) { kernels::fake_quantize_forward(xx, s, rr, yy, c); };
  EXPECT_NO_THROW(fwd(x, s1, y, Tensor::empty({12}, DType::i8), r));
  EXPECT_THROW(fwd(x, s1, y, Tensor::empty({12}, DType::f32), r), ValueError);  // codes not i8
  EXPECT_THROW(fwd(x, s1, y, Tensor::empty({11}, DType::i8), r), ValueError);   // wrong numel
  EXPECT_THROW(fwd(x, s1, y, Tensor::empty({12}, DType::u8), r), ValueError);   // signed codes
  EXPECT_THROW(fwd(x, Tensor::full({4}, 0.5, DType::f64), y, Tensor(), r), ValueError);
  EXPECT_THROW(fwd(x, Tensor::full({1, 1}, 0.5, DType::f64), y, Tensor(), r), ValueError);
  EXPECT_THROW(fwd(x, Tensor::full({1}, 0.5, DType::f32), y, Tensor(), r), ValueError);
  EXPECT_THROW(fwd(x, Tensor::full({1}, 0.0, DType::f64), y, Tensor(), r), ValueError);
  EXPECT_THROW(fwd(x, Tensor::full({1}, NAN, DType::f64), y, Tensor(), r), ValueError);
  // So small that g/|s| overflows: t = 0 * inf would be NaN and every code wrong.
  const Tensor xf = x.to(DType::f32), yf = Tensor::empty_like(xf);
  EXPECT_THROW(fwd(xf, Tensor::full({1}, 1e-39, DType::f32), yf, Tensor(), r), ValueError);
  EXPECT_NO_THROW(fwd(xf, Tensor::full({1}, 1e-37, DType::f32), yf, Tensor(), r));
  EXPECT_THROW(fwd(x, Tensor::full({1}, 1e-309, DType::f64), y, Tensor(), r), ValueError);
  EXPECT_THROW(fwd(x.transpose(0, 1), s1, y.transpose(0, 1), Tensor(), r), ValueError);
  EXPECT_THROW(fwd(x, s1, Tensor::empty({4, 3}, DType::f64), Tensor(), r), ValueError);
  EXPECT_THROW(fwd(x.to(DType::i32), Tensor::full({1}, 1, DType::i32), y, Tensor(), r), ValueError);
  QuantRange bad = r;
  bad.hi = bad.lo;
  EXPECT_THROW(fwd(x, s1, y, Tensor(), bad), ValueError);
  // 8-bit activation codes (0..255) do not fit i8; u8 works.
  const QuantRange a8 = kernels::activation_range(8);
  EXPECT_THROW(fwd(x, s1, y, Tensor::empty({12}, DType::i8), a8), ValueError);
  EXPECT_NO_THROW(fwd(x, s1, y, Tensor::empty({12}, DType::u8), a8));
  Tensor dx = Tensor::empty_like(x);
  EXPECT_THROW(
      kernels::fake_quantize_backward(x, s1, r, x, dx, Tensor::empty({3}, DType::f64), 1.0),
      ValueError);  // dscale shape
  EXPECT_THROW(
      kernels::fake_quantize_backward(x, s1, r, Tensor::empty({12}, DType::f64), dx, Tensor(), 1.0),
      ValueError);  // dy shape
  EXPECT_THROW(quant::fake_quantize(x, Tensor::full({2}, 0.5, DType::f64), r), ValueError);
}
