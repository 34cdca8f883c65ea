// The device-side TRS step on CUDA against its CPU reference (tests/test_trs_device.cpp pins the
// CPU versions to the host code): the transition passes writing into a counts table, the TALR
// controller update, the optimizers' lr tables, and QatController's device path, including a
// bad weight scale that the device reports instead of throwing. Every test skips, with the
// reason, without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "cuda_test_util.h"
#include "kernels/optim_update.h"
#include "kernels/qat_fused.h"
#include "kernels/transition_stats.h"
#include "kernels/trs_update.h"
#include "optim/trs.h"
#include "quant/qat_controller.h"
#include "trs_device_util.h"

using namespace tranq;
using namespace tranq::test;
using kernels::QuantRange;

namespace {

// |a - b| <= rel * |b| for every element (b the reference; no absolute floor).
void expect_relative(const Tensor& a, const Tensor& b, double rel, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<double> va = to_host(a).to_vector<double>(),
                            vb = to_host(b).to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i)
    ASSERT_LE(std::fabs(va[i] - vb[i]), rel * std::fabs(vb[i]))
        << what << "[" << i << "]: " << va[i] << " against " << vb[i];
}

}  // namespace

TEST(CudaTrsDevice, TransitionIntoEqualsCpu) {
  TRANQ_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64})
    for (int bits : {1, 2, 4, 8}) {
      const QuantRange r = kernels::weight_range(bits);
      PassInput a = pass_input(dt, 8, 5000, 30 + bits);
      PassInput c{a.w.to(Device::cuda()), a.scale.to(Device::cuda()), a.codes.to(Device::cuda()),
                  a.prev.to(Device::cuda())};
      Tensor ta = Tensor::zeros({2, 4}, DType::i64);
      Tensor tc = Tensor::full({2, 4}, 99.0, DType::i64).to(Device::cuda());
      kernels::weight_transition_init_into(a.w, a.scale, r, a.codes, a.prev, 0.1, ta, 1);
      kernels::weight_transition_init_into(c.w, c.scale, r, c.codes, c.prev, 0.1, tc, 1);
      EXPECT_TRUE(bits_equal(ta.narrow(0, 1, 1), tc.narrow(0, 1, 1)));
      for (int step = 0; step < 3; ++step) {
        nudge(a.w, 200 + step);
        c.w.copy_(a.w);
        kernels::weight_transition_pass_into(a.w, a.scale, r, a.codes, a.prev, 0.1, ta, 0);
        kernels::weight_transition_pass_into(c.w, c.scale, r, c.codes, c.prev, 0.1, tc, 0);
        EXPECT_TRUE(bits_equal(ta.narrow(0, 0, 1), tc.narrow(0, 0, 1)))
            << dtype_name(dt) << " bits " << bits << " step " << step;
        EXPECT_TRUE(bits_equal(a.codes, c.codes));
        EXPECT_TRUE(bits_equal(a.prev, c.prev));
      }
    }
}

TEST(CudaTrsDevice, TransitionIntoReportsABadScaleInTheRow) {
  TRANQ_REQUIRE_CUDA();
  const QuantRange r = kernels::weight_range(2);
  PassInput a = pass_input(DType::f32, 4, 100, 5);
  std::vector<float> s = a.scale.to_vector<float>();
  s[1] = 0.0f;
  s[3] = NAN;
  PassInput c{a.w.to(Device::cuda()), Tensor::from_vector<float>(s, {4}).to(Device::cuda()),
              a.codes.to(Device::cuda()), a.prev.to(Device::cuda())};
  Tensor tc = Tensor::zeros({1, 4}, DType::i64, Device::cuda());
  kernels::weight_transition_pass_into(c.w, c.scale, r, c.codes, c.prev, 0.1, tc, 0);  // no throw
  EXPECT_EQ(tc.to(Device::cpu()).to_vector<int64_t>(), (std::vector<int64_t>{400, -2, 0, 0}));
  EXPECT_TRUE(bits_equal(c.codes, a.codes));  // untouched
  EXPECT_TRUE(bits_equal(c.prev, a.prev));
}

// The fused pass of a training step: codes, counts row and quantized weight equal the CPU's
// bit for bit; a bad scale leaves the codes alone, reports in the row and writes NaN values.
TEST(CudaTrsDevice, QuantizeAndCountIntoEqualsCpu) {
  TRANQ_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64})
    for (int bits : {1, 2, 4, 8}) {
      const QuantRange r = kernels::weight_range(bits);
      PassInput a = pass_input(dt, 8, 5000, 60 + bits);
      PassInput c{a.w.to(Device::cuda()), a.scale.to(Device::cuda()), a.codes.to(Device::cuda()),
                  a.prev.to(Device::cuda())};
      Tensor ta = Tensor::zeros({2, 4}, DType::i64);
      Tensor tc = Tensor::full({2, 4}, 99.0, DType::i64).to(Device::cuda());
      for (int step = 0; step < 3; ++step) {
        nudge(a.w, 300 + step);
        c.w.copy_(a.w);
        Tensor ya = Tensor::empty(a.w.shape(), dt), yc = Tensor::empty(a.w.shape(), dt, Device::cuda());
        kernels::quantize_weight_and_count_into(a.w, a.scale, r, ya, a.codes, a.prev, 0.1, ta, 1);
        kernels::quantize_weight_and_count_into(c.w, c.scale, r, yc, c.codes, c.prev, 0.1, tc, 1);
        const std::string what =
            std::string(dtype_name(dt)) + " bits " + std::to_string(bits) + " step " +
            std::to_string(step);
        EXPECT_TRUE(bits_equal(ta.narrow(0, 1, 1), tc.narrow(0, 1, 1))) << what;
        EXPECT_TRUE(bits_equal(ya, yc)) << what;
        EXPECT_TRUE(bits_equal(a.codes, c.codes)) << what;
        EXPECT_TRUE(bits_equal(a.prev, c.prev)) << what;
      }
    }
  const QuantRange r = kernels::weight_range(2);
  PassInput a = pass_input(DType::f32, 4, 100, 5);
  std::vector<float> s = a.scale.to_vector<float>();
  s[2] = INFINITY;
  PassInput c{a.w.to(Device::cuda()), Tensor::from_vector<float>(s, {4}).to(Device::cuda()),
              a.codes.to(Device::cuda()), a.prev.to(Device::cuda())};
  Tensor tc = Tensor::zeros({1, 4}, DType::i64, Device::cuda());
  Tensor yc = Tensor::zeros(a.w.shape(), DType::f32, Device::cuda());
  kernels::quantize_weight_and_count_into(c.w, c.scale, r, yc, c.codes, c.prev, 0.1, tc, 0);
  EXPECT_EQ(tc.to(Device::cpu()).to_vector<int64_t>(), (std::vector<int64_t>{400, -1, 0, 0}));
  EXPECT_TRUE(bits_equal(c.codes, a.codes));
  EXPECT_TRUE(bits_equal(c.prev, a.prev));
  for (float v : yc.to(Device::cpu()).to_vector<float>()) ASSERT_TRUE(std::isnan(v));
  // In place (y is w): the latent weights survive a bad scale.
  kernels::quantize_weight_and_count_into(c.w, c.scale, r, c.w, c.codes, c.prev, 0.1, tc, 0);
  EXPECT_TRUE(bits_equal(c.w, a.w));
}

TEST(CudaTrsDevice, TrsUpdateMatchesCpu) {
  TRANQ_REQUIRE_CUDA();
  // kernels/trs_math.h writes every multiply-add as an explicit fused operation, so nvcc has
  // nothing left to contract and the kernel should equal the CPU bit for bit. The relative
  // check comes first so that a formula slip (far off) and a rounding difference (a few ulp,
  // 2.2e-16 relative each) read differently.
  for (const RuleCase& rc : kRules) {
    TrsController ref(cosine_opts(rc.rule, rc.momentum, rc.gain), layer_names());
    State h(ref), d(ref, Device::cuda());
    for (int64_t step = 0; step < 50; ++step) {
      Tensor c = counts_table(step);
      if (step == 20) c.data<int64_t>()[1 * 4 + 1] = -1;
      const kernels::TrsStep p = step_of(ref, step);
      h.update(c, p);
      d.update(c.to(Device::cuda()), p);
    }
    const std::string rule = optim::talr_rule_name(rc.rule);
    const std::pair<const char*, std::pair<const Tensor*, const Tensor*>> vecs[] = {
        {"K", {&d.K, &h.K}}, {"s", {&d.s, &h.s}}, {"U", {&d.U, &h.U}}, {"k", {&d.k, &h.k}}};
    for (const auto& [name, t] : vecs) {
      expect_relative(*t.first, *t.second, 1e-12, rule + " " + name);
      EXPECT_TRUE(bits_equal(*t.first, *t.second)) << rule << " " << name << ": not bit-equal";
    }
    EXPECT_TRUE(bits_equal(d.bad, h.bad));
    EXPECT_EQ(h.bad.to_vector<int64_t>(), (std::vector<int64_t>{0, 21, 0, 0}));
  }
}

TEST(CudaTrsDevice, MultiUpdateTableMatchesCpuAndHostLrs) {
  TRANQ_REQUIRE_CUDA();
  const Tensor table = Tensor::from_vector<double>(kTable, {5});
  const Tensor ctable = table.to(Device::cuda());
  auto to_dev = [](const MultiSet& m) {
    MultiSet c;
    for (size_t i = 0; i < m.p.size(); ++i) {
      c.p.push_back(m.p[i].to(Device::cuda()));
      c.g.push_back(m.g[i].to(Device::cuda()));
      c.b1.push_back(m.b1[i].to(Device::cuda()));
      c.b2.push_back(m.b2[i].to(Device::cuda()));
    }
    return c;
  };
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = 16 * (dt == DType::f32 ? 0x1p-23 : 0x1p-52);
    {
      MultiSet h = multi_set(dt, 50), c = to_dev(h), l = to_dev(h);
      for (int step = 0; step < 3; ++step) {
        kernels::multi_sgd_update(h.p, h.g, h.b1, table, kIndex, 0.9, 0.0, 1e-2, false, step == 0);
        kernels::multi_sgd_update(c.p, c.g, c.b1, ctable, kIndex, 0.9, 0.0, 1e-2, false, step == 0);
        kernels::multi_sgd_update(l.p, l.g, l.b1, table_lrs(), 0.9, 0.0, 1e-2, false, step == 0);
      }
      for (size_t i = 0; i < h.p.size(); ++i) {
        test::expect_close(c.p[i], h.p[i], tol, "sgd param");
        EXPECT_TRUE(bits_equal(c.p[i], l.p[i])) << "sgd: table and host lrs on CUDA, " << i;
      }
    }
    for (bool decoupled : {false, true}) {
      MultiSet h = multi_set(dt, 60), c = to_dev(h), l = to_dev(h);
      for (int64_t step = 1; step <= 3; ++step) {
        const std::vector<int64_t> steps = {step, step, step + 2, step};
        kernels::multi_adam_update(h.p, h.g, h.b1, h.b2, table, kIndex, 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
        kernels::multi_adam_update(c.p, c.g, c.b1, c.b2, ctable, kIndex, 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
        kernels::multi_adam_update(l.p, l.g, l.b1, l.b2, table_lrs(), 0.9, 0.999, 1e-8, 1e-2,
                                   decoupled, steps);
      }
      for (size_t i = 0; i < h.p.size(); ++i) {
        test::expect_close(c.p[i], h.p[i], tol, "adam param");
        EXPECT_TRUE(bits_equal(c.p[i], l.p[i])) << "adam: table and host lrs on CUDA, " << i;
        EXPECT_TRUE(bits_equal(c.b2[i], l.b2[i]));
      }
    }
  }
  // A CPU table with CUDA params is refused.
  MultiSet c = to_dev(multi_set(DType::f32, 70));
  EXPECT_THROW(kernels::multi_sgd_update(c.p, c.g, {}, table, kIndex, 0.0, 0.0, 0.0, false, true),
               ValueError);
}

TEST(CudaTrsDevice, QatControllerStepMatchesCpu) {
  TRANQ_REQUIRE_CUDA();
  for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
    Rig a("sgd", Device::cpu()), b("sgd", Device::cuda());
    auto qa = a.controller(rule), qb = b.controller(rule);
    EXPECT_FALSE(qa->deferred());
    EXPECT_TRUE(qb->deferred());
    qa->initialise();
    qb->initialise();
    for (int64_t step = 0; step < 4; ++step) {
      // The same gradients on both (the convolutions differ in the last bits otherwise).
      a.backward();
      b.opt->zero_grad();
      for (size_t gi = 0; gi < a.opt->param_groups().size(); ++gi)
        for (size_t i = 0; i < a.opt->param_groups()[gi].params.size(); ++i) {
          const Tensor& g = a.opt->param_groups()[gi].params[i].grad();
          if (g.defined()) b.opt->param_groups()[gi].params[i].set_grad(g.to(Device::cuda()));
        }
      qa->before_step(*a.opt);
      qb->before_step(*b.opt);
      a.opt->step();
      b.opt->step();
      // The CUDA update (TALR from the device table) against the CPU one: within the optimizer
      // kernels' tolerance; then the same weights on both, so codes and counts must be equal.
      for (size_t i = 0; i < a.layers.size(); ++i)
        test::expect_close(b.layers[i].second->weight(), a.layers[i].second->weight(), 1e-5,
                           "weight after the step");
      // Every parameter, learned scales too: a scale one ulp apart would move a code at a tie.
      for (size_t gi = 0; gi < a.opt->param_groups().size(); ++gi)
        for (size_t i = 0; i < a.opt->param_groups()[gi].params.size(); ++i)
          b.opt->param_groups()[gi].params[i].copy_(
              a.opt->param_groups()[gi].params[i].to(Device::cuda()));
      qa->after_step(step);
      qb->after_step(step);
      for (size_t i = 0; i < a.layers.size(); ++i) {
        ASSERT_TRUE(bits_equal(a.layers[i].second->codes(), b.layers[i].second->codes()))
            << "step " << step << " layer " << i;
        ASSERT_TRUE(bits_equal(a.layers[i].second->prev_codes(), b.layers[i].second->prev_codes()));
        // The quantized weights the fused pass prepared for the next forward.
        ASSERT_TRUE(b.layers[i].second->prepared_weight().defined());
        ASSERT_TRUE(bits_equal(a.layers[i].second->prepared_weight(),
                               b.layers[i].second->prepared_weight()));
      }
    }
    std::vector<std::vector<std::vector<int64_t>>> replay;
    qb->sync_for_logging([&](const quant::QatController& q) { replay.push_back(counts_of(q)); });
    ASSERT_EQ(replay.size(), 4u);
    EXPECT_EQ(replay.back(), counts_of(*qa));
    for (size_t i = 0; i < a.layers.size(); ++i) {
      EXPECT_NEAR(qb->trs()->talr(i), qa->trs()->talr(i), 1e-12 * std::fabs(qa->trs()->talr(i)));
      EXPECT_NEAR(qb->trs()->ema(i), qa->trs()->ema(i),
                  1e-12 * std::fabs(qa->trs()->ema(i)) + 1e-300);
    }
  }
}

// The case the device path exists for: a zero scale on the GPU does not throw in after_step (the
// pass reports it in the counts row), but no checkpoint can take the state and the next sync
// raises it, naming the layer and the step, before replaying anything.
TEST(CudaTrsDevice, QatControllerRaisesABadScaleAtStateTensorsAndSync) {
  TRANQ_REQUIRE_CUDA();
  Rig b("sgd", Device::cuda());
  auto qb = b.controller(TalrRule::multiplicative);
  ASSERT_TRUE(qb->deferred());
  qb->initialise();
  qb->after_step(0);
  EXPECT_NO_THROW(qb->state_tensors());
  const std::string bad = b.layers[3].first;
  {
    NoGradGuard ng;
    const Tensor scale = b.layers[3].second->weight_scale();
    scale.copy_(Tensor::zeros(scale.shape(), scale.dtype()).to(Device::cuda()));
  }
  qb->after_step(1);  // no throw: reported in the row
  qb->after_step(2);
  auto expect_names_it = [&](const std::function<void()>& f, const std::string& what) {
    try {
      f();
      ADD_FAILURE() << what << ": expected a ValueError";
    } catch (const ValueError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("'" + bad + "'"), std::string::npos) << what << ": " << msg;
      EXPECT_NE(msg.find("at step 1"), std::string::npos) << what << ": " << msg;
    }
  };
  expect_names_it([&] { qb->state_tensors(); }, "state_tensors");
  size_t replayed = 0;
  expect_names_it([&] { qb->sync_for_logging([&](const quant::QatController&) { ++replayed; }); },
                  "sync_for_logging");
  EXPECT_EQ(replayed, 0u);
  EXPECT_EQ(qb->trs()->updates(), 0);  // the host controller was not touched
  expect_names_it([&] { qb->sync_for_logging(); }, "a second sync");  // still pending
}
