// The fused ops' CPU references: quantize_weight_and_count equals fake_quantize_forward plus
// weight_transition_pass (values, codes, prev_codes, counts) for every weight bit width, per
// tensor and per channel, f32 and f64, also when y aliases w, and writes nothing on an error;
// the multi-tensor SGD/Adam updates equal the single updates with each tensor's own learning
// rate and step, and reject bad lists before changing anything; the facades reject tensors on
// different devices.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/optim_update.h"
#include "kernels/qat_fused.h"
#include "kernels/quantize.h"
#include "kernels/transition_stats.h"

using namespace tranq;
using kernels::QuantRange;
using kernels::TransitionCounts;
using test::same_bits;

namespace {

void expect_counts_eq(const TransitionCounts& a, const TransitionCounts& b, const std::string& w) {
  EXPECT_EQ(a.numel, b.numel) << w;
  EXPECT_EQ(a.changed, b.changed) << w;
  EXPECT_EQ(a.oscillated, b.oscillated) << w;
  EXPECT_EQ(a.near, b.near) << w;
}

}  // namespace

TEST(QatFused, QuantizeWeightAndCountEqualsForwardPlusPass) {
  uint64_t seed = 1;
  for (DType dt : {DType::f32, DType::f64})
    for (bool per_channel : {false, true})
      for (int bits = 1; bits <= 8; ++bits) {
        const QuantRange r = kernels::weight_range(bits);
        const Shape shape = {5, 3, 3, 37};
        const int64_t n = shape_numel(shape), channels = per_channel ? 5 : 1;
        const std::vector<double> s = test::make_scales(channels, ++seed);
        const Tensor scale = test::tensor_of(s, {channels}, dt);
        const std::vector<double> w0 = test::make_quant_input(n, s, r, seed, true);
        Tensor codes_a = Tensor::empty({n}, DType::i8), prev_a = Tensor::empty({n}, DType::i8);
        kernels::weight_transition_init(test::tensor_of(w0, shape, dt), scale, r, codes_a, prev_a,
                                        0.1);
        Tensor codes_b = codes_a.clone(), prev_b = prev_a.clone();
        Tensor codes_c = codes_a.clone(), prev_c = prev_a.clone();
        Rng rng(seed, 5);
        std::vector<double> w = w0;
        for (int step = 0; step < 4; ++step) {
          const std::string what = std::string(dtype_name(dt)) +
                                   (per_channel ? " channel " : " tensor ") + std::to_string(bits) +
                                   "b step " + std::to_string(step);
          for (int64_t i = 0; i < n; ++i)
            if (std::isfinite(w[i]))
              w[i] += rng.uniform(-0.8, 0.8) * std::fabs(s[i / (n / channels)]) / r.g;
          const Tensor wt = test::tensor_of(w, shape, dt);
          // Reference: the two separate passes.
          Tensor y_ref = Tensor::empty(shape, dt);
          const TransitionCounts k_ref =
              kernels::weight_transition_pass(wt, scale, r, codes_a, prev_a, 0.25);
          kernels::fake_quantize_forward(wt, scale, r, y_ref, Tensor());
          // Fused, into a separate y and in place over a copy of the weights.
          Tensor y = Tensor::empty(shape, dt);
          const TransitionCounts k =
              kernels::quantize_weight_and_count(wt, scale, r, y, codes_b, prev_b, 0.25);
          Tensor inplace = wt.clone();
          const TransitionCounts k2 =
              kernels::quantize_weight_and_count(inplace, scale, r, inplace, codes_c, prev_c, 0.25);
          expect_counts_eq(k, k_ref, what);
          expect_counts_eq(k2, k_ref, what + " in place");
          ASSERT_TRUE(same_bits(y, y_ref)) << what;
          ASSERT_TRUE(same_bits(inplace, y_ref)) << what << " in place";
          ASSERT_TRUE(same_bits(codes_b, codes_a)) << what;
          ASSERT_TRUE(same_bits(prev_b, prev_a)) << what;
          ASSERT_TRUE(same_bits(codes_c, codes_a)) << what;
          ASSERT_TRUE(same_bits(prev_c, prev_a)) << what;
          if (step > 0) {
            EXPECT_GT(k.changed, 0) << what;
          }
        }
      }
}

TEST(QatFused, QuantizeWeightAndCountErrorsWriteNothing) {
  const QuantRange r = kernels::weight_range(2);
  const Tensor w = test::tensor_of(test::normal_values(12, 1), {3, 4}, DType::f32);
  Tensor codes = test::tensor_of(std::vector<double>(12, 1.0), {12}, DType::i8);
  Tensor prev = test::tensor_of(std::vector<double>(12, -1.0), {12}, DType::i8);
  Tensor y = Tensor::full({3, 4}, 7.0);
  const Tensor codes0 = codes.clone(), prev0 = prev.clone(), y0 = y.clone();
  // A zero scale, a y of the wrong shape or dtype, near_fraction out of range.
  EXPECT_THROW(kernels::quantize_weight_and_count(
                   w, test::tensor_of({0.5, 0.0, 1.0}, {3}, DType::f32), r, y, codes, prev, 0.1),
               ValueError);
  const Tensor scale = test::tensor_of({0.5, 0.25, 1.0}, {3}, DType::f32);
  EXPECT_THROW(
      kernels::quantize_weight_and_count(w, scale, r, Tensor::empty({12}), codes, prev, 0.1),
      ValueError);
  EXPECT_THROW(kernels::quantize_weight_and_count(w, scale, r, Tensor::empty({3, 4}, DType::f64),
                                                  codes, prev, 0.1),
               ValueError);
  EXPECT_THROW(kernels::quantize_weight_and_count(w, scale, r, Tensor(), codes, prev, 0.1),
               ValueError);
  EXPECT_THROW(kernels::quantize_weight_and_count(w, scale, r, y, codes, prev, 0.7), ValueError);
  EXPECT_TRUE(same_bits(codes, codes0));
  EXPECT_TRUE(same_bits(prev, prev0));
  EXPECT_TRUE(same_bits(y, y0));
}

namespace {

std::vector<Tensor> random_list(const std::vector<int64_t>& sizes, DType dt, uint64_t seed) {
  std::vector<Tensor> out;
  for (int64_t n : sizes) out.push_back(test::tensor_of(test::normal_values(n, ++seed), {n}, dt));
  return out;
}

// Empty tensors are recreated rather than cloned: Tensor::clone() memcpy's from a null
// pointer for them, which UBSan reports (a core issue, reported separately).
std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts)
    out.push_back(t.numel() == 0 ? Tensor::empty(t.shape(), t.dtype(), t.device()) : t.clone());
  return out;
}

const std::vector<int64_t> kSizes = {3, 0, 1000, 40000, 1};

}  // namespace

TEST(QatFused, MultiSgdEqualsSingleUpdatesWithPerTensorLr) {
  const std::vector<double> lrs = {0.1, 0.5, 0.0, 0.02, 0.3};
  for (DType dt : {DType::f32, DType::f64})
    for (double momentum : {0.0, 0.9}) {
      std::vector<Tensor> p = random_list(kSizes, dt, 1), q = clones(p);
      std::vector<Tensor> bp = random_list(kSizes, dt, 20), bq = clones(bp);
      const std::vector<Tensor> p0 = clones(p);
      for (int step = 0; step < 3; ++step) {
        const std::vector<Tensor> g = random_list(kSizes, dt, 40 + 10 * step);
        kernels::multi_sgd_update(p, g, momentum != 0 ? bp : std::vector<Tensor>{}, lrs, momentum,
                                  0.1, 1e-3, false, step == 0);
        for (size_t i = 0; i < q.size(); ++i)
          kernels::sgd_update(q[i], g[i], momentum != 0 ? bq[i] : Tensor(), lrs[i], momentum, 0.1,
                              1e-3, false, step == 0);
        for (size_t i = 0; i < q.size(); ++i) {
          ASSERT_TRUE(same_bits(p[i], q[i])) << dtype_name(dt) << " tensor " << i;
          ASSERT_TRUE(same_bits(bp[i], bq[i])) << dtype_name(dt) << " buffer " << i;
        }
      }
      EXPECT_TRUE(same_bits(p[2], p0[2])) << "lr 0 must leave its tensor alone";
      EXPECT_FALSE(same_bits(p[0], p0[0]));
      // Each tensor moved by its own learning rate: the first step's update of tensor 4 (lr 0.3)
      // is 3x that of tensor 0 (lr 0.1) per unit of gradient; checked through a fresh run.
      std::vector<Tensor> a = {Tensor::zeros({1}, dt), Tensor::zeros({1}, dt)};
      const std::vector<Tensor> ga = {Tensor::ones({1}, dt), Tensor::ones({1}, dt)};
      kernels::multi_sgd_update(a, ga, {}, {0.1, 0.3}, 0.0, 0.0, 0.0, false, true);
      EXPECT_NEAR(a[0].item(), -0.1, 1e-7);
      EXPECT_NEAR(a[1].item(), -0.3, 1e-7);
    }
}

TEST(QatFused, MultiAdamEqualsSingleUpdatesWithPerTensorLrAndStep) {
  const std::vector<double> lrs = {1e-2, 3e-3, 0.0, 1e-3, 5e-2};
  const std::vector<int64_t> steps0 = {1, 4, 1, 2, 7};
  for (DType dt : {DType::f32, DType::f64})
    for (bool decoupled : {false, true}) {
      std::vector<Tensor> p = random_list(kSizes, dt, 1), q = clones(p);
      std::vector<Tensor> m, v;
      for (int64_t n : kSizes) {
        m.push_back(Tensor::zeros({n}, dt));
        v.push_back(Tensor::zeros({n}, dt));
      }
      std::vector<Tensor> mq = clones(m), vq = clones(v);
      for (int k = 0; k < 3; ++k) {
        std::vector<int64_t> steps = steps0;
        for (int64_t& s : steps) s += k;
        const std::vector<Tensor> g = random_list(kSizes, dt, 60 + 10 * k);
        kernels::multi_adam_update(p, g, m, v, lrs, 0.9, 0.999, 1e-8, 1e-2, decoupled, steps);
        for (size_t i = 0; i < q.size(); ++i)
          kernels::adam_update(q[i], g[i], mq[i], vq[i], lrs[i], 0.9, 0.999, 1e-8, 1e-2, decoupled,
                               steps[i]);
        for (size_t i = 0; i < q.size(); ++i) {
          ASSERT_TRUE(same_bits(p[i], q[i])) << dtype_name(dt) << " tensor " << i;
          ASSERT_TRUE(same_bits(m[i], mq[i])) << dtype_name(dt) << " exp_avg " << i;
          ASSERT_TRUE(same_bits(v[i], vq[i])) << dtype_name(dt) << " exp_avg_sq " << i;
        }
      }
    }
}

TEST(QatFused, MultiUpdateArgumentErrorsChangeNothing) {
  std::vector<Tensor> p = random_list(kSizes, DType::f32, 1),
                      g = random_list(kSizes, DType::f32, 9);
  const std::vector<Tensor> p0 = clones(p);
  const std::vector<double> lrs(p.size(), 0.1);
  auto sgd = [&](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& bufs, const std::vector<double>& l, double momentum) {
    kernels::multi_sgd_update(params, grads, bufs, l, momentum, 0.0, 0.0, false, true);
  };
  // The last entry is bad in each case, so a loop that updated as it checked would have
  // changed the earlier tensors.
  std::vector<Tensor> bad_grads = g;
  bad_grads.back() = Tensor::zeros({2});  // wrong shape
  EXPECT_THROW(sgd(p, bad_grads, {}, lrs, 0.0), ValueError);
  bad_grads.back() = Tensor::zeros({1}, DType::f64);  // wrong dtype
  EXPECT_THROW(sgd(p, bad_grads, {}, lrs, 0.0), ValueError);
  bad_grads.back() = Tensor();  // undefined
  EXPECT_THROW(sgd(p, bad_grads, {}, lrs, 0.0), ValueError);
  EXPECT_THROW(sgd(p, g, {}, std::vector<double>(p.size() - 1, 0.1), 0.0), ValueError);
  EXPECT_THROW(sgd(p, g, {}, lrs, 0.9), ValueError);  // momentum needs buffers
  std::vector<Tensor> dup = p, dup_g = g;
  dup.back() = dup[0];
  dup_g.back() = dup_g[0];
  EXPECT_THROW(sgd(dup, dup_g, {}, lrs, 0.0), ValueError);
  std::vector<Tensor> m, v;
  for (int64_t n : kSizes) {
    m.push_back(Tensor::zeros({n}));
    v.push_back(Tensor::zeros({n}));
  }
  std::vector<int64_t> steps(p.size(), 1);
  steps.back() = 0;
  EXPECT_THROW(kernels::multi_adam_update(p, g, m, v, lrs, 0.9, 0.999, 1e-8, 0.0, false, steps),
               ValueError);
  steps.pop_back();
  EXPECT_THROW(kernels::multi_adam_update(p, g, m, v, lrs, 0.9, 0.999, 1e-8, 0.0, false, steps),
               ValueError);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(same_bits(p[i], p0[i])) << i;
  // Empty lists are a no-op; mismatched empty lists still say so.
  kernels::multi_sgd_update({}, {}, {}, {}, 0.9, 0.0, 0.0, false, true);
  EXPECT_THROW(kernels::multi_sgd_update({}, g, {}, {}, 0.0, 0.0, 0.0, false, true), ValueError);
}

TEST(QatFused, FacadesRejectTensorsOnAnotherDevice) {
  // Without a GPU no CUDA tensor can exist; with one, a CPU x and a CUDA y must not meet.
  TRANQ_REQUIRE_CUDA();
  const QuantRange r = kernels::weight_range(2);
  const Tensor x = Tensor::ones({4});
  const Tensor s = Tensor::ones({1});
  EXPECT_THROW(kernels::fake_quantize_forward(
                   x, s, r, Tensor::empty({4}, DType::f32, Device::cuda()), Tensor()),
               ValueError);
  Tensor codes = Tensor::empty({4}, DType::i8), prev = Tensor::empty({4}, DType::i8);
  EXPECT_THROW(kernels::weight_transition_init(x, s, r, codes, prev.to(Device::cuda()), 0.1),
               ValueError);
  EXPECT_THROW(kernels::sgd_update(x.clone(), Tensor::ones({4}, DType::f32, Device::cuda()),
                                   Tensor(), 0.1, 0.0, 0.0, 0.0, false, true),
               ValueError);
}
