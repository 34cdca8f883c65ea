// The fused weight-transition pass: hand-derived sequences (changes, A->B->A oscillations,
// A->B->C non-oscillations, near-boundary counts), binary weights crossing 0, per-channel
// scales, agreement with the forward's codes and with a naive reference over random walks,
// thread-count independence and argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "gradcheck.h"
#include "kernels/quantize.h"
#include "kernels/transition_stats.h"

using namespace tranq;
using kernels::QuantRange;
using kernels::TransitionCounts;

namespace {

struct Step {
  std::vector<double> t;  // latent weights in units of steps (w = t * |s| / g)
  int64_t changed, oscillated, near;
  std::vector<int8_t> codes, prev;
};

void expect_counts(const TransitionCounts& k, int64_t numel, int64_t changed, int64_t osc,
                   int64_t near) {
  EXPECT_EQ(k.numel, numel);
  EXPECT_EQ(k.changed, changed);
  EXPECT_EQ(k.oscillated, osc);
  EXPECT_EQ(k.near, near);
}

// A plain scalar reference of the design note's pass, in double.
struct Reference {
  QuantRange r;
  std::vector<int> codes, prev;
  int code(double t) const {
    if (r.binary_sign) return t >= 0 ? 1 : -1;
    const double c = std::min(std::max(t, double(r.lo)), double(r.hi));
    const double f = std::floor(c), d = c - f;
    return static_cast<int>(d > 0.5 ? f + 1 : d < 0.5 ? f : (std::fmod(f, 2.0) == 0 ? f : f + 1));
  }
  bool near(double t, double nf) const {
    if (r.binary_sign) return std::fabs(t) < nf;
    double best = 1e300;
    for (int k = r.lo; k <= r.hi - 1; ++k) best = std::min(best, std::fabs(t - (k + 0.5)));
    return best < nf;
  }
  TransitionCounts step(const std::vector<double>& t, double nf) {
    TransitionCounts out;
    out.numel = static_cast<int64_t>(t.size());
    const bool first = codes.empty();
    if (first) codes.assign(t.size(), 0), prev.assign(t.size(), 0);
    for (size_t i = 0; i < t.size(); ++i) {
      const int c = code(t[i]);
      out.near += near(t[i], nf);
      if (first) {
        codes[i] = prev[i] = c;
      } else if (c != codes[i]) {
        ++out.changed;
        out.oscillated += c == prev[i];
        prev[i] = codes[i];
        codes[i] = c;
      }
    }
    return out;
  }
};

template <class T>
void run_hand_sequence(const QuantRange& r, double s, const std::vector<Step>& steps) {
  const int64_t n = static_cast<int64_t>(steps[0].t.size());
  Tensor scale = Tensor::from_vector(std::vector<T>{static_cast<T>(s)}, {1});
  Tensor codes = Tensor::full({n}, 99, DType::i8), prev = Tensor::full({n}, 99, DType::i8);
  for (size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE(testing::Message() << "step " << k << " " << dtype_name(dtype_of<T>));
    std::vector<T> w;
    for (double t : steps[k].t) w.push_back(static_cast<T>(t * std::fabs(s) / r.g));
    Tensor wt = Tensor::from_vector(w, {n});
    const TransitionCounts got = k == 0
                                     ? kernels::weight_transition_init(wt, scale, r, codes, prev)
                                     : kernels::weight_transition_pass(wt, scale, r, codes, prev);
    expect_counts(got, n, steps[k].changed, steps[k].oscillated, steps[k].near);
    EXPECT_EQ(codes.to_vector<int8_t>(), steps[k].codes);
    EXPECT_EQ(prev.to_vector<int8_t>(), steps[k].prev);
  }
}

}  // namespace

TEST(TransitionStats, SixWeightsThroughFourSteps) {
  // 2-bit weights: codes -2..1, transition points t = -1.5, -0.5, 0.5; near = within 0.1.
  const std::vector<Step> steps = {
      // init: codes from t; near: only w4 (0.45 is 0.05 from 0.5).
      {{-1.8, -0.2, 0.3, 1.2, 0.45, -1.0}, 0, 0, 1, {-2, 0, 0, 1, 0, -1}, {-2, 0, 0, 1, 0, -1}},
      // w0 -2->-1, w1 0->-1, w4 0->1: three changes, none undoes an earlier one.
      {{-1.3, -0.7, 0.3, 1.2, 0.55, -1.0}, 3, 0, 1, {-1, -1, 0, 1, 1, -1}, {-2, 0, 0, 1, 0, -1}},
      // w0 -1->-2 (A->B->A), w4 1->0 (A->B->A), w2 0->1 (first move). w3 t=2.0 clips to 1.
      // near: w4 (0.04 from 0.5), w5 (-0.52 is 0.02 from -0.5).
      {{-1.7, -1.2, 0.7, 2.0, 0.46, -0.52}, 3, 2, 2, {-2, -1, 1, 1, 0, -1}, {-1, 0, 0, 1, 1, -1}},
      // w0 -2->-1 undoes its last move (oscillation); w1 -1->0 undoes its step-1 move, one
      // quiet step later (oscillation); w2 1->-1 is A->B->C (0, 1, -1: not one); w5 -1->-2
      // (clipped t=-3) is a first move.
      {{-0.9, -0.2, -0.7, 1.2, 0.46, -3.0}, 4, 2, 1, {-1, 0, -1, 1, 0, -2}, {-2, -1, 1, 1, 1, -1}},
  };
  const QuantRange r = kernels::weight_range(2);
  for (double s : {1.0, -1.0, 0.3}) {
    run_hand_sequence<double>(r, s, steps);
    run_hand_sequence<float>(r, s, steps);
  }
}

TEST(TransitionStats, BinaryWeightsCrossingZero) {
  // Sign codes; the only transition point is t = 0 (t = w/|s|).
  const std::vector<Step> steps = {
      {{0.6, -0.02, 0.0, -0.4}, 0, 0, 2, {1, -1, 1, -1}, {1, -1, 1, -1}},
      {{-0.6, 0.02, -1e-9, -0.4}, 3, 0, 2, {-1, 1, -1, -1}, {1, -1, 1, -1}},
      {{0.6, 0.04, 0.0, 1.5}, 3, 2, 2, {1, 1, 1, 1}, {-1, -1, -1, -1}},
  };
  for (double s : {0.5, -2.0}) {
    run_hand_sequence<double>(kernels::weight_range(1), s, steps);
    run_hand_sequence<float>(kernels::weight_range(1), s, steps);
  }
}

TEST(TransitionStats, PerChannelScalesAndForwardCodesAgree) {
  // The same latent values in two channels with different scales land on different codes.
  const QuantRange r = kernels::weight_range(2);
  Tensor w = Tensor::from_vector(std::vector<double>{0.1, 0.3, -0.2, 0.1, 0.3, -0.2}, {2, 3});
  Tensor scale = Tensor::from_vector(std::vector<double>{1.0, -0.25}, {2});  // t = 2w and 8w
  Tensor codes = Tensor::empty({2, 3}, DType::i8), prev = Tensor::empty({6}, DType::i8);
  // t: 0.2 0.6 -0.4 | 0.8 2.4 -1.6 -> codes 0 1 0 | 1 1 -2; within 0.15 of a point
  // (-1.5, -0.5, 0.5): 0.6, -0.4 and -1.6.
  const TransitionCounts k0 = kernels::weight_transition_init(w, scale, r, codes, prev, 0.15);
  expect_counts(k0, 6, 0, 0, 3);
  EXPECT_EQ(codes.to_vector<int8_t>(), (std::vector<int8_t>{0, 1, 0, 1, 1, -2}));
  EXPECT_EQ(prev.to_vector<int8_t>(), codes.to_vector<int8_t>());
  // Identical weights again: nothing changes.
  expect_counts(kernels::weight_transition_pass(w, scale, r, codes, prev, 0.15), 6, 0, 0, 3);
  // The forward's codes equal the pass's codes, per channel.
  Tensor y = Tensor::empty_like(w), fcodes = Tensor::empty({6}, DType::i8);
  kernels::fake_quantize_forward(w, scale, r, y, fcodes);
  EXPECT_EQ(fcodes.to_vector<int8_t>(), codes.to_vector<int8_t>());
  // Move channel 1 only: t = 8w; w4 0.3 -> 0.05 (t 0.4, code 0) changes, channel 0 w1
  // 0.3 -> 0.26 (t 0.52, still 1) does not. Near: 0.52, -0.4 | 0.4, -1.6.
  Tensor w2 = Tensor::from_vector(std::vector<double>{0.1, 0.26, -0.2, 0.1, 0.05, -0.2}, {2, 3});
  expect_counts(kernels::weight_transition_pass(w2, scale, r, codes, prev, 0.15), 6, 1, 0, 4);
  EXPECT_EQ(codes.to_vector<int8_t>(), (std::vector<int8_t>{0, 1, 0, 1, 0, -2}));
  EXPECT_EQ(prev.to_vector<int8_t>(), (std::vector<int8_t>{0, 1, 0, 1, 1, -2}));
}

TEST(TransitionStats, RandomWalksMatchReferenceAndThreadCounts) {
  const int saved = num_threads();
  for (int bits : {1, 2, 4}) {
    const QuantRange r = kernels::weight_range(bits);
    for (const Shape& sshape : {Shape{1}, Shape{4}}) {
      SCOPED_TRACE(testing::Message() << "bits " << bits << " scales " << sshape[0]);
      const int64_t C = 4, inner = 50000, n = C * inner;  // > kQuantChunk: several pieces
      std::vector<double> s = {0.9, -0.5, 1.4, 0.7};
      s.resize(static_cast<size_t>(sshape[0]));
      Tensor scale = Tensor::from_vector(s, sshape);
      std::vector<double> w = test::random_tensor({n}, 60 + bits, -1.2, 1.2).to_vector<double>();
      Reference ref{r, {}, {}};
      Tensor c1 = Tensor::empty({n}, DType::i8), p1 = Tensor::empty({n}, DType::i8);
      Tensor c2 = Tensor::empty({C, inner}, DType::i8), p2 = Tensor::empty({n}, DType::i8);
      Rng rng(70 + bits);
      int64_t total_osc = 0;
      for (int step = 0; step < 6; ++step) {
        std::vector<double> t(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
          t[i] = w[i] * r.g / std::fabs(s[sshape[0] == 1 ? 0 : i / inner]);
        const TransitionCounts want = ref.step(t, 0.1);
        Tensor wt = Tensor::from_vector(w, {C, inner});
        set_num_threads(1);
        const TransitionCounts a = step == 0
                                       ? kernels::weight_transition_init(wt, scale, r, c1, p1)
                                       : kernels::weight_transition_pass(wt, scale, r, c1, p1);
        set_num_threads(2);
        const TransitionCounts b = step == 0
                                       ? kernels::weight_transition_init(wt, scale, r, c2, p2)
                                       : kernels::weight_transition_pass(wt, scale, r, c2, p2);
        set_num_threads(saved);
        expect_counts(a, want.numel, want.changed, want.oscillated, want.near);
        expect_counts(b, a.numel, a.changed, a.oscillated, a.near);
        if (step == 0) {
          EXPECT_EQ(a.changed, 0) << "init reports no changes";
        } else {
          EXPECT_GT(a.changed, 0);
        }
        total_osc += a.oscillated;
        const std::vector<int8_t> cv = c1.to_vector<int8_t>(), pv = p1.to_vector<int8_t>();
        ASSERT_EQ(cv, c2.to_vector<int8_t>());
        ASSERT_EQ(pv, p2.to_vector<int8_t>());
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(cv[i], ref.codes[i]) << "element " << i;
          ASSERT_EQ(pv[i], ref.prev[i]) << "element " << i;
        }
        // Small random moves: weights near a point flip back and forth.
        for (double& x : w) x += rng.uniform(-0.05, 0.05) * 0.5;
      }
      EXPECT_GT(total_osc, 0) << "the walk must exercise oscillations";
    }
  }
}

TEST(TransitionStats, InitReportsNoChangesAndCodesEqualForward) {
  const QuantRange r = kernels::weight_range(3);
  Tensor w = test::random_tensor({16, 3, 3, 3}, 80, -1, 1, DType::f32);
  Tensor scale = test::random_tensor({16}, 81, 0.3, 1.0, DType::f32);
  Tensor codes = Tensor::full({432}, 5, DType::i8), prev = Tensor::full({432}, -7, DType::i8);
  const TransitionCounts k = kernels::weight_transition_init(w, scale, r, codes, prev);
  EXPECT_EQ(k.numel, 432);
  EXPECT_EQ(k.changed, 0);
  EXPECT_EQ(k.oscillated, 0);
  Tensor y = Tensor::empty_like(w), fc = Tensor::empty({432}, DType::i8);
  kernels::fake_quantize_forward(w, scale, r, y, fc);
  EXPECT_EQ(codes.to_vector<int8_t>(), fc.to_vector<int8_t>());
  EXPECT_EQ(prev.to_vector<int8_t>(), fc.to_vector<int8_t>());
  expect_counts(kernels::weight_transition_pass(w, scale, r, codes, prev), 432, 0, 0, k.near);
}

TEST(TransitionStats, BadInputsThrowValueError) {
  const QuantRange r = kernels::weight_range(2);
  Tensor w = test::random_tensor({4, 5}, 90);
  Tensor s = Tensor::full({1}, 0.5, DType::f64);
  Tensor c = Tensor::empty({20}, DType::i8), p = Tensor::empty({20}, DType::i8);
  EXPECT_NO_THROW(kernels::weight_transition_init(w, s, r, c, p));
  auto pass = [&](const Tensor& ww, const Tensor& ss, const Tensor& cc, const Tensor& pp,
                  double nf) { kernels::weight_transition_pass(ww, ss, r, cc, pp, nf); };
  EXPECT_THROW(pass(w, s, Tensor::empty({20}, DType::u8), p, 0.1), ValueError);
  EXPECT_THROW(pass(w, s, Tensor::empty({20}, DType::f32), p, 0.1), ValueError);
  EXPECT_THROW(pass(w, s, c, Tensor::empty({19}, DType::i8), 0.1), ValueError);
  EXPECT_THROW(pass(w, s, Tensor::empty({21}, DType::i8), p, 0.1), ValueError);
  EXPECT_THROW(pass(w, s, c, Tensor(), 0.1), ValueError);
  EXPECT_THROW(pass(w, s, c, c, 0.1), ValueError);  // the two buffers must differ
  EXPECT_THROW(pass(w, Tensor::full({5}, 0.5, DType::f64), c, p, 0.1), ValueError);
  EXPECT_THROW(pass(w, Tensor::full({4}, 0.5, DType::f32), c, p, 0.1), ValueError);
  EXPECT_THROW(pass(w, Tensor::full({4}, 0.0, DType::f64), c, p, 0.1), ValueError);
  EXPECT_THROW(pass(w, Tensor::full({4}, 1e-309, DType::f64), c, p, 0.1), ValueError);  // g/s = inf
  EXPECT_THROW(pass(w, s, c, p, -0.1), ValueError);
  EXPECT_THROW(pass(w, s, c, p, 0.7), ValueError);
  EXPECT_THROW(pass(w.to(DType::i32), s, c, p, 0.1), ValueError);
  EXPECT_THROW(kernels::weight_transition_pass(w, s, kernels::activation_range(8), c, p),
               ValueError);  // codes 0..255 do not fit i8
  EXPECT_THROW(kernels::weight_range(0), ValueError);
  EXPECT_THROW(kernels::weight_range(9), ValueError);
}
