// The quantized weights the counting pass prepares for the next forward
// (QatController::set_prepare_weights, QuantizedLayer::set_prepared_weight): training with them
// gives the same bits as quantizing again in the forward, on the host path and the device path
// (forced on the CPU), with learned weight scales; a forward uses them once; whatever resets the
// weights or scales drops them. Also the pieces: kernels::quantize_weight_and_count_into on the
// CPU and quant::fake_quantize_precomputed.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "kernels/qat_fused.h"
#include "kernels/quantize.h"
#include "quant/fake_quantize.h"
#include "quant/qat_controller.h"
#include "trs_device_util.h"

using namespace tranq;
using namespace tranq::test;
using kernels::QuantRange;

namespace {

// fake_quantize of the layer's current weight and scale, without recording.
Tensor quantize_now(const quant::QuantizedLayer& q) {
  NoGradGuard ng;
  return quant::fake_quantize(q.weight().detach(), q.weight_scale().detach(), q.weight_range());
}

}  // namespace

TEST(QatPrepared, TrainingWithPreparedWeightsEqualsQuantizingInTheForward) {
  for (bool device_path : {false, true})
    for (const std::string opt_name : {"sgd", "adam"}) {
      const std::string what = opt_name + (device_path ? " device path" : " host path");
      Rig a(opt_name, Device::cpu()), b(opt_name, Device::cpu());
      auto qa = a.controller(TalrRule::multiplicative), qb = b.controller(TalrRule::multiplicative);
      qa->set_prepare_weights(false);
      qa->set_force_device_path(device_path);
      qb->set_force_device_path(device_path);
      qa->initialise();
      qb->initialise();
      const Tensor initial_scale = a.layers[0].second->weight_scale().clone();
      for (int64_t step = 0; step < 5; ++step) {
        a.backward();
        b.backward();
        for (size_t i = 0; i < b.layers.size(); ++i)  // the forward used them up
          ASSERT_FALSE(b.layers[i].second->prepared_weight().defined()) << what;
        qa->before_step(*a.opt);
        qb->before_step(*b.opt);
        a.opt->step();
        b.opt->step();
        qa->after_step(step);
        qb->after_step(step);
        for (size_t i = 0; i < a.layers.size(); ++i) {
          const quant::QuantizedLayer& la = *a.layers[i].second;
          const quant::QuantizedLayer& lb = *b.layers[i].second;
          const std::string at = what + " step " + std::to_string(step) + " " + a.layers[i].first;
          ASSERT_FALSE(la.prepared_weight().defined()) << at;
          ASSERT_TRUE(lb.prepared_weight().defined()) << at;
          ASSERT_TRUE(bits_equal(lb.prepared_weight(), quantize_now(lb))) << at;
          ASSERT_TRUE(bits_equal(la.weight(), lb.weight())) << at;
          ASSERT_TRUE(bits_equal(la.weight_scale(), lb.weight_scale())) << at;
          ASSERT_TRUE(bits_equal(la.codes(), lb.codes())) << at;
          ASSERT_TRUE(bits_equal(la.prev_codes(), lb.prev_codes())) << at;
        }
        expect_same_state(qb->state_tensors(), qa->state_tensors(), what);
      }
      // The scales learned: the prepared values had to follow them.
      EXPECT_FALSE(bits_equal(a.layers[0].second->weight_scale(), initial_scale)) << what;
      int64_t changed = 0;
      qa->sync_for_logging();
      for (const auto& l : qa->last()) changed += l.counts.changed;
      EXPECT_GT(changed, 0) << what << ": no code changed, the test would be weak";
    }
}

TEST(QatPrepared, ResettingWeightsOrScalesDropsThem) {
  Rig r("sgd", Device::cpu());
  auto q = r.controller(TalrRule::multiplicative);
  q->initialise();
  auto prepared = [&] {
    size_t n = 0;
    for (auto& [name, l] : r.layers) n += l->prepared_weight().defined();
    return n;
  };
  r.backward();
  q->before_step(*r.opt);
  r.opt->step();
  q->after_step(0);
  EXPECT_EQ(prepared(), r.layers.size());
  r.layers[0].second->init_weight_scale();
  EXPECT_FALSE(r.layers[0].second->prepared_weight().defined());
  EXPECT_EQ(prepared(), r.layers.size() - 1);
  q->load_state(q->state_tensors());  // a checkpoint being restored
  EXPECT_EQ(prepared(), 0u);
  q->after_step(1);
  EXPECT_EQ(prepared(), r.layers.size());
  q->initialise();
  EXPECT_EQ(prepared(), 0u);
  // Wrong shape, dtype or device: refused.
  const Tensor& w = r.layers[0].second->weight();
  EXPECT_THROW(r.layers[0].second->set_prepared_weight(Tensor::zeros({w.numel()})), ValueError);
  EXPECT_THROW(r.layers[0].second->set_prepared_weight(Tensor::zeros(w.shape(), DType::f64)),
               ValueError);
}

TEST(QatPrepared, QuantizeAndCountIntoEqualsTheSeparatePasses) {
  for (DType dt : {DType::f32, DType::f64})
    for (int bits : {1, 2, 3, 8}) {
      const QuantRange r = kernels::weight_range(bits);
      PassInput a = pass_input(dt, 6, 300, 70 + bits);
      PassInput b = clone(a);
      Tensor ta = Tensor::zeros({3, 4}, DType::i64), tb = Tensor::full({3, 4}, 7.0, DType::i64);
      for (int step = 0; step < 3; ++step) {
        nudge(a.w, 400 + step);
        b.w.copy_(a.w);
        Tensor ya = Tensor::empty(a.w.shape(), dt), yb = Tensor::empty(a.w.shape(), dt);
        kernels::weight_transition_pass_into(a.w, a.scale, r, a.codes, a.prev, 0.2, ta, 2);
        kernels::fake_quantize_forward(a.w, a.scale, r, ya, Tensor());
        kernels::quantize_weight_and_count_into(b.w, b.scale, r, yb, b.codes, b.prev, 0.2, tb, 2);
        const std::string what = std::string(dtype_name(dt)) + " " + std::to_string(bits) + "b";
        EXPECT_TRUE(bits_equal(ta.narrow(0, 2, 1), tb.narrow(0, 2, 1))) << what;
        EXPECT_TRUE(bits_equal(ya, yb)) << what;
        EXPECT_TRUE(bits_equal(a.codes, b.codes)) << what;
        EXPECT_TRUE(bits_equal(a.prev, b.prev)) << what;
      }
      EXPECT_GT(tb.to_vector<int64_t>()[2 * 4 + kernels::kCountChanged], 0);
      // Rows other than `row` are left alone.
      EXPECT_EQ(tb.narrow(0, 0, 2).to_vector<int64_t>(), std::vector<int64_t>(8, 7));
    }
  // Errors: nothing written.
  const QuantRange r = kernels::weight_range(2);
  PassInput a = pass_input(DType::f32, 2, 10, 9);
  Tensor table = Tensor::zeros({1, 4}, DType::i64);
  Tensor y = Tensor::full(a.w.shape(), 5.0);
  const PassInput before = clone(a);
  EXPECT_THROW(kernels::quantize_weight_and_count_into(a.w, a.scale, r, Tensor::empty({20}),
                                                       a.codes, a.prev, 0.1, table, 0),
               ValueError);
  EXPECT_THROW(
      kernels::quantize_weight_and_count_into(a.w, a.scale, r, y, a.codes, a.prev, 0.1, table, 1),
      ValueError);
  a.scale.fill_(0.0);
  EXPECT_THROW(
      kernels::quantize_weight_and_count_into(a.w, a.scale, r, y, a.codes, a.prev, 0.1, table, 0),
      ValueError);
  EXPECT_TRUE(bits_equal(a.codes, before.codes));
  EXPECT_TRUE(bits_equal(a.prev, before.prev));
  EXPECT_TRUE(bits_equal(y, Tensor::full(a.w.shape(), 5.0)));
  EXPECT_EQ(table.to_vector<int64_t>(), std::vector<int64_t>(4, 0));
}

TEST(QatPrepared, PrecomputedFakeQuantizeHasFakeQuantizesGradients) {
  for (bool lsq : {false, true}) {
    const QuantRange r = kernels::weight_range(3);
    Tensor x = random_tensor({4, 50}, 3, -2, 2, DType::f64);
    Tensor s = Tensor::from_vector<double>({0.7, -1.1, 1.3, 0.9}, {4});
    Tensor x2 = x.clone(), s2 = s.clone();
    for (Tensor* t : {&x, &s, &x2, &s2}) t->set_requires_grad(true);
    const Tensor proj = random_tensor({4, 50}, 4, -1, 1, DType::f64);
    Tensor y = quant::fake_quantize(x, s, r, lsq);
    Tensor pre = Tensor::empty({4, 50}, DType::f64);
    kernels::fake_quantize_forward(x2.detach(), s2.detach(), r, pre, Tensor());
    Tensor y2 = quant::fake_quantize_precomputed(x2, s2, r, lsq, pre);
    EXPECT_TRUE(bits_equal(y, y2));
    ops::sum(ops::mul(y, proj)).backward();
    ops::sum(ops::mul(y2, proj)).backward();
    EXPECT_TRUE(bits_equal(x.grad(), x2.grad())) << "lsq " << lsq;
    EXPECT_TRUE(bits_equal(s.grad(), s2.grad())) << "lsq " << lsq;
    EXPECT_GT(std::fabs(s.grad().to_vector<double>()[0]), 0.0);
  }
  const QuantRange r = kernels::weight_range(2);
  Tensor x = Tensor::zeros({3, 4}), s = Tensor::ones({1});
  EXPECT_THROW(quant::fake_quantize_precomputed(x, s, r, false, Tensor::zeros({12})), ValueError);
  EXPECT_THROW(quant::fake_quantize_precomputed(x, s, r, false, Tensor::zeros({3, 4}, DType::f64)),
               ValueError);
  EXPECT_THROW(quant::fake_quantize_precomputed(x, s, r, false, Tensor()), ValueError);
}
