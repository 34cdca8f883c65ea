// The CUDA quantizer kernels against the CPU reference on the same inputs: fake quantisation
// forward (values and codes bit for bit), backward (dx bit for bit, dscale within the
// summation-order bound of kernels/quantize.h and identical across runs), dequantisation,
// the transition pass over random walks and the fused quantize-and-count (codes, prev_codes,
// counts exact). Shapes include odd sizes and channels longer than one CUDA block's piece;
// every bit width 1..8, weight and activation ranges, per-tensor and per-channel scales, f32
// and f64, exact ties and special values. Skipped, with the reason, without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/qat_fused.h"
#include "kernels/quantize.h"
#include "kernels/transition_stats.h"

using namespace tranq;
using kernels::QuantRange;
using kernels::TransitionCounts;
using test::same_bits;
using test::to_cuda;
using test::to_host;

namespace {

struct Case {
  Shape shape;
  bool per_channel;
};

// Odd sizes, a single element, channels of 9001 (> kCudaChunk = 4096, so several blocks per
// channel) and a long per-tensor run.
const std::vector<Case> kCases = {
    {{1}, false},      {{7}, false},     {{3, 5}, true},     {{17, 3, 3, 3}, true},
    {{5, 9001}, true}, {{70001}, false}, {{6, 4, 3}, false},
};

const DType kDtypes[] = {DType::f32, DType::f64};

struct Inputs {
  Tensor x, scale;  // host
  int64_t channels;
};

Inputs make_inputs(const Case& c, const QuantRange& r, DType dt, uint64_t seed) {
  const int64_t n = shape_numel(c.shape);
  const int64_t channels = c.per_channel ? c.shape[0] : 1;
  const std::vector<double> s = test::make_scales(channels, seed);
  Inputs in;
  in.x = test::tensor_of(test::make_quant_input(n, s, r, seed, true), c.shape, dt);
  in.scale = test::tensor_of(s, {channels}, dt);
  in.channels = channels;
  return in;
}

std::string label(const Case& c, const QuantRange& r, DType dt, int bits, bool weights) {
  return shape_str(c.shape) + (c.per_channel ? " per-channel " : " per-tensor ") +
         (weights ? "weight " : "act ") + std::to_string(bits) + "b " + dtype_name(dt) +
         " lo=" + std::to_string(r.lo) + " hi=" + std::to_string(r.hi);
}

}  // namespace

TEST(CudaQuantize, ForwardValuesAndCodesEqualCpu) {
  TRANQ_REQUIRE_CUDA();
  uint64_t seed = 1;
  for (const Case& c : kCases)
    for (DType dt : kDtypes)
      for (int bits = 1; bits <= 8; ++bits)
        for (bool weights : {true, false}) {
          const QuantRange r =
              weights ? kernels::weight_range(bits) : kernels::activation_range(bits);
          const DType code_t = weights ? DType::i8 : DType::u8;
          const Inputs in = make_inputs(c, r, dt, ++seed);
          const std::string what = label(c, r, dt, bits, weights);
          Tensor y = Tensor::empty(c.shape, dt), codes = Tensor::empty(c.shape, code_t);
          kernels::fake_quantize_forward(in.x, in.scale, r, y, codes);
          Tensor dx = to_cuda(in.x), ds = to_cuda(in.scale);
          Tensor dy = Tensor::empty(c.shape, dt, Device::cuda());
          Tensor dcodes = Tensor::empty(c.shape, code_t, Device::cuda());
          kernels::fake_quantize_forward(dx, ds, r, dy, dcodes);
          ASSERT_TRUE(same_bits(dy, y))
              << what << " y differs at " << test::first_difference(dy, y);
          ASSERT_TRUE(same_bits(dcodes, codes))
              << what << " codes differ at " << test::first_difference(dcodes, codes);
          // Without codes, and in place (y aliasing x): the same values.
          Tensor inplace = dx.clone();
          kernels::fake_quantize_forward(inplace, ds, r, inplace, Tensor());
          ASSERT_TRUE(same_bits(inplace, y)) << what << " in place";
        }
}

TEST(CudaQuantize, BackwardDxExactDscaleWithinBoundAndDeterministic) {
  TRANQ_REQUIRE_CUDA();
  uint64_t seed = 1000;
  for (const Case& c : kCases)
    for (DType dt : kDtypes)
      for (int bits = 1; bits <= 8; ++bits)
        for (bool weights : {true, false}) {
          const QuantRange r =
              weights ? kernels::weight_range(bits) : kernels::activation_range(bits);
          const Inputs in = make_inputs(c, r, dt, ++seed);
          const std::string what = label(c, r, dt, bits, weights);
          const int64_t n = in.x.numel(), inner = n / in.channels;
          const double factor = (bits % 2) ? kernels::lsq_grad_scale_factor(inner, r) : 1.0;
          const Tensor g = test::tensor_of(test::normal_values(n, seed), c.shape, dt);
          Tensor gx = Tensor::empty(c.shape, dt), gs = Tensor::empty({in.channels}, dt);
          kernels::fake_quantize_backward(in.x, in.scale, r, g, gx, gs, factor);

          Tensor cx = to_cuda(in.x), cs = to_cuda(in.scale), cg = to_cuda(g);
          Tensor cgx = Tensor::empty(c.shape, dt, Device::cuda());
          Tensor cgs = Tensor::empty({in.channels}, dt, Device::cuda());
          kernels::fake_quantize_backward(cx, cs, r, cg, cgx, cgs, factor);
          ASSERT_TRUE(same_bits(cgx, gx))
              << what << " dx differs at " << test::first_difference(cgx, gx);

          // dscale: |diff| <= n_c * 2^-52 * factor * sum|dy*x| / s^2 + one ulp of T.
          const std::vector<double> xs = to_host(in.x).to(DType::f64).to_vector<double>();
          const std::vector<double> gv = to_host(g).to(DType::f64).to_vector<double>();
          const std::vector<double> sv = to_host(in.scale).to(DType::f64).to_vector<double>();
          const std::vector<double> ref = gs.to(DType::f64).to_vector<double>();
          const std::vector<double> got = to_host(cgs).to(DType::f64).to_vector<double>();
          const double ulp = dt == DType::f32 ? 0x1p-23 : 0x1p-52;
          for (int64_t ch = 0; ch < in.channels; ++ch) {
            double sum_abs = 0;
            for (int64_t i = ch * inner; i < (ch + 1) * inner; ++i)
              if (std::isfinite(xs[i])) sum_abs += std::fabs(gv[i] * xs[i]);
            const double bound =
                static_cast<double>(inner) * 0x1p-52 * factor * sum_abs / (sv[ch] * sv[ch]) +
                ulp * std::fabs(ref[ch]);
            ASSERT_LE(std::fabs(got[ch] - ref[ch]), bound)
                << what << " dscale[" << ch << "] " << got[ch] << " vs " << ref[ch];
          }
          // The same bits on a second run; dx alone and dscale alone agree with the joint call.
          Tensor cgs2 = Tensor::empty({in.channels}, dt, Device::cuda());
          kernels::fake_quantize_backward(cx, cs, r, cg, Tensor(), cgs2, factor);
          ASSERT_TRUE(same_bits(cgs2, cgs)) << what << " dscale not deterministic";
          Tensor cgx2 = cg.clone();  // dx aliasing dy
          kernels::fake_quantize_backward(cx, cs, r, cgx2, cgx2, Tensor(), factor);
          ASSERT_TRUE(same_bits(cgx2, gx)) << what << " dx in place";
        }
}

TEST(CudaQuantize, DequantizeEqualsCpuAndRejectsBadCodes) {
  TRANQ_REQUIRE_CUDA();
  for (DType dt : kDtypes)
    for (int bits = 1; bits <= 8; ++bits)
      for (bool weights : {true, false}) {
        const QuantRange r =
            weights ? kernels::weight_range(bits) : kernels::activation_range(bits);
        const DType code_t = weights ? DType::i8 : DType::u8;
        Rng rng(static_cast<uint64_t>(bits * 2 + weights));
        const int64_t n = 10007;
        std::vector<double> cv(n);
        for (double& v : cv) {
          v = r.lo + static_cast<double>(rng.below(static_cast<uint64_t>(r.hi - r.lo + 1)));
          if (r.binary_sign && v == 0) v = 1;
        }
        const Tensor codes = test::tensor_of(cv, {n}, code_t);
        Tensor y = Tensor::empty({n}, dt);
        kernels::dequantize_codes(codes, r, y);
        Tensor cy = Tensor::empty({n}, dt, Device::cuda());
        kernels::dequantize_codes(to_cuda(codes), r, cy);
        ASSERT_TRUE(same_bits(cy, y)) << bits << " bits, weights " << weights;
      }
  // A code outside the range (or 0 for binary weights) is a ValueError on both backends.
  for (int bits : {1, 2, 4}) {
    const QuantRange r = kernels::weight_range(bits);
    const Tensor codes =
        test::tensor_of({1, static_cast<double>(r.hi + (bits == 1 ? -1 : 1)), -1}, {3}, DType::i8);
    EXPECT_THROW(kernels::dequantize_codes(codes, r, Tensor::empty({3})), ValueError);
    EXPECT_THROW(kernels::dequantize_codes(to_cuda(codes), r,
                                           Tensor::empty({3}, DType::f32, Device::cuda())),
                 ValueError)
        << bits;
  }
}

TEST(CudaQuantize, MixedDevicesAreValueErrors) {
  TRANQ_REQUIRE_CUDA();
  const QuantRange r = kernels::weight_range(4);
  Tensor x = Tensor::ones({4}, DType::f32, Device::cuda());
  Tensor s = Tensor::ones({1}, DType::f32, Device::cuda());
  EXPECT_THROW(kernels::fake_quantize_forward(x, s, r, Tensor::empty({4}), Tensor()), ValueError);
  EXPECT_THROW(kernels::fake_quantize_forward(x, Tensor::ones({1}), r, x, Tensor()), ValueError);
  EXPECT_THROW(kernels::fake_quantize_backward(x, s, r, Tensor::ones({4}), x, Tensor(), 1.0),
               ValueError);
}

namespace {

// Moves every weight by a random step of up to `reach` quantizer steps, and every 4th step puts
// a third of the weights back where they were two steps before (so some codes oscillate).
std::vector<double> walk(const std::vector<double>& now, const std::vector<double>& before,
                         const std::vector<double>& scales, const QuantRange& r, Rng& rng, int step,
                         double reach) {
  const int64_t n = static_cast<int64_t>(now.size());
  const int64_t inner = n / static_cast<int64_t>(scales.size());
  std::vector<double> next = now;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(now[i])) continue;
    if (step % 4 == 3 && i % 3 == 0) {
      next[i] = before[i];
    } else {
      next[i] += rng.uniform(-reach, reach) * std::fabs(scales[i / inner]) / r.g;
    }
  }
  return next;
}

}  // namespace

TEST(CudaTransitionStats, RandomWalksEqualCpuExactly) {
  TRANQ_REQUIRE_CUDA();
  uint64_t seed = 5000;
  for (const Case& c : kCases)
    for (DType dt : kDtypes)
      for (int bits = 1; bits <= 8; ++bits) {
        const QuantRange r = kernels::weight_range(bits);
        const int64_t n = shape_numel(c.shape);
        const int64_t channels = c.per_channel ? c.shape[0] : 1;
        const std::vector<double> s = test::make_scales(channels, ++seed);
        const Tensor scale = test::tensor_of(s, {channels}, dt), cscale = to_cuda(scale);
        const double nf = (bits % 3 == 0) ? 0.5 : (bits % 3 == 1 ? 0.1 : 0.0);
        Rng rng(seed, 7);
        std::vector<double> before = test::make_quant_input(n, s, r, seed, true), now = before;
        Tensor codes = Tensor::empty({n}, DType::i8), prev = Tensor::empty({n}, DType::i8);
        Tensor ccodes = Tensor::empty({n}, DType::i8, Device::cuda());
        Tensor cprev = Tensor::empty({n}, DType::i8, Device::cuda());
        for (int step = 0; step < 6; ++step) {
          const std::string what = label(c, r, dt, bits, true) + " step " + std::to_string(step);
          const Tensor w = test::tensor_of(now, c.shape, dt), cw = to_cuda(w);
          TransitionCounts k, ck;
          if (step == 0) {
            k = kernels::weight_transition_init(w, scale, r, codes, prev, nf);
            ck = kernels::weight_transition_init(cw, cscale, r, ccodes, cprev, nf);
          } else {
            k = kernels::weight_transition_pass(w, scale, r, codes, prev, nf);
            ck = kernels::weight_transition_pass(cw, cscale, r, ccodes, cprev, nf);
          }
          ASSERT_EQ(ck.numel, k.numel) << what;
          ASSERT_EQ(ck.changed, k.changed) << what;
          ASSERT_EQ(ck.oscillated, k.oscillated) << what;
          ASSERT_EQ(ck.near, k.near) << what;
          ASSERT_TRUE(same_bits(ccodes, codes)) << what << " codes";
          ASSERT_TRUE(same_bits(cprev, prev)) << what << " prev_codes";
          if (step > 1 && n > 100) {
            EXPECT_GT(k.changed, 0) << what << ": the walk moved nothing";
          }
          const std::vector<double> next = walk(now, before, s, r, rng, step, 0.7);
          before = now;
          now = next;
        }
      }
}

TEST(CudaTransitionStats, BadScaleThrowsAndChangesNothing) {
  TRANQ_REQUIRE_CUDA();
  const QuantRange r = kernels::weight_range(3);
  // 1e-39: so small that g/|s| overflows f32 (flushed to zero or not, the kernel must refuse it).
  for (double bad : {0.0, std::nan(""), double(INFINITY), 1e-39}) {
    Tensor w = to_cuda(test::tensor_of(test::normal_values(40, 3), {4, 10}, DType::f32));
    Tensor scale = to_cuda(test::tensor_of({0.5, 0.25, bad, 1.0}, {4}, DType::f32));
    Tensor codes = to_cuda(test::tensor_of(std::vector<double>(40, 1.0), {40}, DType::i8));
    Tensor prev = to_cuda(test::tensor_of(std::vector<double>(40, 2.0), {40}, DType::i8));
    Tensor y = to_cuda(test::tensor_of(std::vector<double>(40, 9.0), {4, 10}, DType::f32));
    const Tensor codes0 = to_host(codes), prev0 = to_host(prev), y0 = to_host(y);
    EXPECT_THROW(kernels::weight_transition_pass(w, scale, r, codes, prev, 0.1), ValueError) << bad;
    EXPECT_THROW(kernels::weight_transition_init(w, scale, r, codes, prev, 0.1), ValueError) << bad;
    EXPECT_THROW(kernels::quantize_weight_and_count(w, scale, r, y, codes, prev, 0.1), ValueError)
        << bad;
    EXPECT_TRUE(same_bits(codes, codes0)) << bad;
    EXPECT_TRUE(same_bits(prev, prev0)) << bad;
    EXPECT_TRUE(same_bits(y, y0)) << bad;
  }
}

// The f32 pass moves 4 elements at a time where w, y, codes and prev allow 16- and 4-byte
// accesses; views one element into their buffers do not, and must give the same results
// through the element path (and the aligned case with a tail of 3 through both).
TEST(CudaQatFused, MisalignedViewsEqualCpu) {
  TRANQ_REQUIRE_CUDA();
  const QuantRange r = kernels::weight_range(2);
  for (int64_t offset : {0, 1, 2}) {
    const int64_t n = 4096 + 4099;  // two pieces: a full one and one with a tail of 3
    const std::vector<double> s = test::make_scales(1, 77);
    const Tensor scale = test::tensor_of(s, {1}, DType::f32), cscale = to_cuda(scale);
    const std::vector<double> v = test::make_quant_input(n, s, r, 78, true);
    const Tensor w = test::tensor_of(v, {n}, DType::f32);
    Tensor codes = Tensor::empty({n}, DType::i8), prev = Tensor::empty({n}, DType::i8);
    kernels::weight_transition_init(w, scale, r, codes, prev, 0.1);
    // Device copies placed `offset` elements into larger buffers.
    auto place = [&](const Tensor& host) {
      Tensor big = Tensor::zeros({n + offset}, host.dtype(), Device::cuda());
      Tensor view = big.narrow(0, offset, n);
      view.copy_(to_cuda(host));
      return view;
    };
    Tensor ccodes = place(codes), cprev = place(prev);
    std::vector<double> moved = v;
    for (size_t i = 0; i < moved.size(); i += 3) moved[i] = -moved[i] + 0.3 * s[0];
    const Tensor w2 = test::tensor_of(moved, {n}, DType::f32);
    const Tensor cw2 = place(w2);
    Tensor y = Tensor::empty({n}, DType::f32), cy = place(Tensor::zeros({n}, DType::f32));
    const TransitionCounts k =
        kernels::quantize_weight_and_count(w2, scale, r, y, codes, prev, 0.2);
    const TransitionCounts ck =
        kernels::quantize_weight_and_count(cw2, cscale, r, cy, ccodes, cprev, 0.2);
    const std::string what = "offset " + std::to_string(offset);
    EXPECT_GT(k.changed, 0) << what;
    EXPECT_EQ(ck.changed, k.changed) << what;
    EXPECT_EQ(ck.oscillated, k.oscillated) << what;
    EXPECT_EQ(ck.near, k.near) << what;
    EXPECT_TRUE(same_bits(cy, y)) << what << " y differs at " << test::first_difference(cy, y);
    EXPECT_TRUE(same_bits(ccodes, codes)) << what << " codes";
    EXPECT_TRUE(same_bits(cprev, prev)) << what << " prev_codes";
  }
}

TEST(CudaQatFused, QuantizeWeightAndCountEqualsCpu) {
  TRANQ_REQUIRE_CUDA();
  uint64_t seed = 9000;
  for (const Case& c : kCases)
    for (DType dt : kDtypes)
      for (int bits = 1; bits <= 8; ++bits) {
        const QuantRange r = kernels::weight_range(bits);
        const int64_t n = shape_numel(c.shape);
        const int64_t channels = c.per_channel ? c.shape[0] : 1;
        const std::vector<double> s = test::make_scales(channels, ++seed);
        const Tensor scale = test::tensor_of(s, {channels}, dt), cscale = to_cuda(scale);
        Rng rng(seed, 9);
        std::vector<double> before = test::make_quant_input(n, s, r, seed, true), now = before;
        Tensor codes = Tensor::empty({n}, DType::i8), prev = Tensor::empty({n}, DType::i8);
        kernels::weight_transition_init(test::tensor_of(now, c.shape, dt), scale, r, codes, prev,
                                        0.1);
        Tensor ccodes = to_cuda(codes), cprev = to_cuda(prev);
        for (int step = 1; step < 5; ++step) {
          const std::string what = label(c, r, dt, bits, true) + " step " + std::to_string(step);
          const std::vector<double> next = walk(now, before, s, r, rng, step, 0.7);
          before = now;
          now = next;
          const Tensor w = test::tensor_of(now, c.shape, dt), cw = to_cuda(w);
          Tensor y = Tensor::empty(c.shape, dt);
          const TransitionCounts k =
              kernels::quantize_weight_and_count(w, scale, r, y, codes, prev, 0.2);
          // Odd steps write y over the weights themselves (y aliasing w).
          Tensor cy = (step % 2) ? cw.clone() : Tensor::empty(c.shape, dt, Device::cuda());
          const Tensor cw_in = (step % 2) ? cy : cw;
          const TransitionCounts ck =
              kernels::quantize_weight_and_count(cw_in, cscale, r, cy, ccodes, cprev, 0.2);
          ASSERT_EQ(ck.numel, k.numel) << what;
          ASSERT_EQ(ck.changed, k.changed) << what;
          ASSERT_EQ(ck.oscillated, k.oscillated) << what;
          ASSERT_EQ(ck.near, k.near) << what;
          ASSERT_TRUE(same_bits(cy, y))
              << what << " y differs at " << test::first_difference(cy, y);
          ASSERT_TRUE(same_bits(ccodes, codes)) << what << " codes";
          ASSERT_TRUE(same_bits(cprev, prev)) << what << " prev_codes";
        }
      }
}
