#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>

#include "core/parallel.h"
#include "kernels/optim_update.h"
#include "optim/optimizer.h"
#include "optim_test_util.h"

using namespace tranq;
using namespace tranq::optim;
using namespace tranq::test;

namespace {

// torch.optim.SGD, written out as a scalar loop.
std::vector<double> sgd_reference(const ParamGroup& h, int steps) {
  std::vector<double> p = kInit, buf(p.size(), 0.0);
  for (int k = 0; k < steps; ++k) {
    for (size_t i = 0; i < p.size(); ++i) {
      double d = kGrads[k][i] + h.weight_decay * p[i];
      if (h.momentum != 0) {
        buf[i] = k == 0 ? d : h.momentum * buf[i] + (1 - h.dampening) * d;
        d = h.nesterov ? d + h.momentum * buf[i] : buf[i];
      }
      p[i] -= h.lr * d;
    }
  }
  return p;
}

// torch.optim.Adam / AdamW, written out as a scalar loop.
std::vector<double> adam_reference(const ParamGroup& h, bool decoupled, int steps) {
  std::vector<double> p = kInit, m(p.size(), 0.0), v(p.size(), 0.0);
  for (int k = 0; k < steps; ++k) {
    const int t = k + 1;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = kGrads[k][i];
      if (decoupled)
        p[i] *= 1 - h.lr * h.weight_decay;
      else
        g += h.weight_decay * p[i];
      m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
      v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
      const double mhat = m[i] / (1 - std::pow(h.beta1, t));
      const double vhat = v[i] / (1 - std::pow(h.beta2, t));
      p[i] -= h.lr * mhat / (std::sqrt(vhat) + h.eps);
    }
  }
  return p;
}

std::vector<double> run_optimizer(const std::string& name, ParamGroup h, DType dt, int steps = 3) {
  Tensor p = make_param(dt);
  h.names = {"w"};
  h.params = {p};
  auto opt = make_optimizer(name, {h});
  for (int k = 0; k < steps; ++k) {
    p.set_grad(grad_of(kGrads[k], dt));
    opt->step();
  }
  EXPECT_EQ(opt->steps(), steps);
  return values(p);
}

void expect_near(const std::vector<double>& a, const std::vector<double>& b, double tol,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << what << " element " << i;
}

struct Case {
  std::string label, optimizer;
  ParamGroup h;
  std::vector<double> torch;  // torch 1.13, float64, 3 steps (see kGrads)
};

ParamGroup sgd_hp(double lr, double momentum, bool nesterov, double dampening, double wd) {
  ParamGroup h;
  h.lr = lr;
  h.momentum = momentum;
  h.nesterov = nesterov;
  h.dampening = dampening;
  h.weight_decay = wd;
  return h;
}

ParamGroup adam_hp(double lr, double wd, double beta1 = 0.9, double beta2 = 0.999,
                   double eps = 1e-8) {
  ParamGroup h;
  h.lr = lr;
  h.weight_decay = wd;
  h.beta1 = beta1;
  h.beta2 = beta2;
  h.eps = eps;
  return h;
}

std::vector<Case> cases() {
  return {
      {"sgd plain",
       "sgd",
       sgd_hp(0.1, 0, false, 0, 0),
       {0.95999999999999996, -2.02, 0.52500000000000002}},
      {"sgd momentum",
       "sgd",
       sgd_hp(0.1, 0.9, false, 0, 0),
       {0.90149999999999997, -1.9209999999999998, 0.47324999999999995}},
      {"sgd nesterov",
       "sgd",
       sgd_hp(0.1, 0.9, true, 0, 0),
       {0.87134999999999996, -1.9489000000000001, 0.50092499999999995}},
      {"sgd weight decay",
       "sgd",
       sgd_hp(0.1, 0.9, false, 0, 0.01),
       {0.89605474899999993, -1.9100894979999998, 0.47055237449999993}},
      {"sgd dampening",
       "sgd",
       sgd_hp(0.1, 0.9, false, 0.5, 0),
       {0.8829999999999999, -1.825, 0.45274999999999993}},
      {"adam",
       "adam",
       adam_hp(0.01, 0),
       {0.98461074307908825, -1.9908958778161865, 0.48400165287394581}},
      {"adam l2",
       "adam",
       adam_hp(0.01, 0.1, 0.8, 0.99, 1e-6),
       {0.98121995352640834, -1.9874436987811659, 0.48350185118486194}},
      {"adamw",
       "adamw",
       adam_hp(0.01, 0.1),
       {0.98163564705899431, -1.9849224470664533, 0.48253212812471991}},
  };
}

std::vector<double> reference(const Case& c) {
  if (c.optimizer == "sgd") return sgd_reference(c.h, 3);
  return adam_reference(c.h, c.optimizer == "adamw", 3);
}

}  // namespace

TEST(Optim, MatchesTorchAndScalarReferenceInDouble) {
  for (const Case& c : cases()) {
    const std::vector<double> got = run_optimizer(c.optimizer, c.h, DType::f64);
    expect_near(reference(c), c.torch, 1e-14, c.label + " (reference vs torch)");
    expect_near(got, c.torch, 1e-14, c.label);
    EXPECT_NE(got, kInit) << c.label;
  }
}

TEST(Optim, FloatMatchesReference) {
  for (const Case& c : cases()) {
    expect_near(run_optimizer(c.optimizer, c.h, DType::f32), c.torch, 2e-6, c.label + " f32");
  }
}

TEST(Optim, PerGroupHyperparametersAreHonoured) {
  Tensor a = make_param(), b = make_param();
  ParamGroup ga = group_of("a", a), gb = group_of("b", b);
  ga.lr = 0.1;
  ga.momentum = 0.9;
  ga.nesterov = true;
  gb.lr = 0.1;
  gb.momentum = 0.9;
  gb.weight_decay = 0.01;
  auto opt = make_sgd({ga, gb});
  EXPECT_EQ(opt->param_groups()[1].base_lr, 0.1);
  for (int k = 0; k < 3; ++k) {
    a.set_grad(grad_of(kGrads[k], DType::f64));
    b.set_grad(grad_of(kGrads[k], DType::f64));
    opt->step();
  }
  expect_near(values(a), sgd_reference(ga, 3), 1e-14, "group a");
  expect_near(values(b), sgd_reference(gb, 3), 1e-14, "group b");

  // Per-group lr for Adam, changed between steps as a schedule would.
  Tensor c = make_param(), d = make_param();
  ParamGroup gc = group_of("c", c), gd = group_of("d", d);
  gc.lr = 0.01;
  gd.lr = 0.02;
  auto adam = make_adam({gc, gd});
  for (int k = 0; k < 3; ++k) {
    c.set_grad(grad_of(kGrads[k], DType::f64));
    d.set_grad(grad_of(kGrads[k], DType::f64));
    adam->step();
  }
  expect_near(values(c), adam_reference(gc, false, 3), 1e-14, "group c");
  expect_near(values(d), adam_reference(gd, false, 3), 1e-14, "group d");
  adam->param_groups()[1].lr = 0.0;
  const std::vector<double> before = values(d);
  d.set_grad(grad_of(kGrads[0], DType::f64));
  c.set_grad(grad_of(kGrads[0], DType::f64));
  adam->step();
  EXPECT_EQ(values(d), before) << "lr 0 must leave the parameter as it was";
  EXPECT_NE(values(c), adam_reference(gc, false, 3));
}

TEST(Optim, ParamsWithoutGradAreUntouchedAndStartLater) {
  for (const std::string name : {"sgd", "adam", "adamw"}) {
    Tensor a = make_param(), b = make_param();
    ParamGroup g;
    g.names = {"a", "b"};
    g.params = {a, b};
    g.lr = 0.01;
    g.momentum = 0.9;
    g.weight_decay = 0.1;
    auto opt = make_optimizer(name, {g});
    a.set_grad(grad_of(kGrads[2], DType::f64));
    opt->step();
    opt->step();
    EXPECT_EQ(values(b), kInit) << name << ": b has no grad, even weight decay must not move it";
    // b's first update, two optimizer steps in, is a first update: same as a fresh optimizer's.
    b.set_grad(grad_of(kGrads[0], DType::f64));
    a.zero_grad();
    opt->step();
    const std::vector<double> ref = run_optimizer(name, g, DType::f64, 1);
    EXPECT_EQ(values(b), ref) << name;
    NamedTensors st = opt->state_tensors();
    std::map<std::string, int64_t> steps;
    for (auto& [n, t] : st) {
      if (n.size() > 5 && n.substr(n.size() - 5) == ".step") steps[n] = t.to_vector<int64_t>()[0];
    }
    EXPECT_EQ(steps["a.step"], 2) << name;
    EXPECT_EQ(steps["b.step"], 1) << name;
    EXPECT_EQ(opt->steps(), 3);
  }
}

TEST(Optim, GradientsAreNotModified) {
  for (const std::string name : {"sgd", "adam", "adamw"}) {
    Tensor p = make_param();
    ParamGroup g = group_of("w", p);
    g.momentum = 0.9;
    g.weight_decay = 0.5;
    auto opt = make_optimizer(name, {g});
    // The gradient aliases another tensor (as a view of a larger buffer would).
    Tensor shared = grad_of(kGrads[1], DType::f64);
    p.set_grad(shared);
    opt->step();
    opt->step();
    EXPECT_EQ(shared.to_vector<double>(), kGrads[1]) << name;
    EXPECT_TRUE(p.grad().same_as(shared));
  }
}

TEST(Optim, StridedGradientIsAccepted) {
  Tensor p = make_param();
  auto opt = make_sgd({group_of("w", p)});
  Tensor wide = Tensor::from_vector<double>({0.5, 9, -1.0, 9, 0.25, 9}, {3, 2});
  p.set_grad(wide.select(1, 0));  // [0.5, -1, 0.25] with stride 2
  opt->step();
  expect_near(values(p), sgd_reference(ParamGroup{}, 1), 1e-15, "strided grad");
}

TEST(Optim, ZeroGradDropsGradients) {
  Tensor p = make_param();
  auto opt = make_sgd({group_of("w", p)});
  p.set_grad(grad_of(kGrads[0], DType::f64));
  opt->zero_grad();
  EXPECT_FALSE(p.grad().defined());
  opt->step();
  EXPECT_EQ(values(p), kInit);
  EXPECT_EQ(opt->steps(), 1);
}

TEST(Optim, ConstructionAndStepValidation) {
  Tensor p = make_param();
  EXPECT_THROW(make_sgd({}), ValueError);
  ParamGroup nest = group_of("w", p);
  nest.nesterov = true;  // needs momentum
  EXPECT_THROW(make_sgd({nest}), ValueError);
  ParamGroup names = group_of("w", p);
  names.names.push_back("extra");
  EXPECT_THROW(make_sgd({names}), ValueError);
  EXPECT_THROW(make_sgd({group_of("w", p), group_of("w2", p)}), ValueError) << "same tensor twice";
  EXPECT_THROW(make_sgd({group_of("w", p), group_of("w", make_param())}), ValueError);
  ParamGroup ints = group_of("i", Tensor::zeros({3}, DType::i32));
  EXPECT_THROW(make_sgd({ints}), ValueError);
  ParamGroup betas = group_of("w", p);
  betas.beta2 = 1.0;
  EXPECT_THROW(make_adam({betas}), ValueError);
  try {
    make_optimizer("rmsprop", {group_of("w", p)});
    ADD_FAILURE();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("sgd, adam, adamw"), std::string::npos) << e.what();
  }

  ParamGroup g = group_of("w", p);
  g.lr = 0.3;
  g.base_lr = 123;
  auto opt = make_sgd({g});
  EXPECT_EQ(opt->param_groups()[0].base_lr, 0.3) << "base_lr is set to lr at construction";
  p.set_grad(grad_of(kGrads[0], DType::f64));
  opt->param_groups()[0].lr = -1;
  EXPECT_THROW(opt->step(), ValueError);
  opt->param_groups()[0].lr = 0.1;
  opt->param_groups()[0].params.push_back(make_param());
  opt->param_groups()[0].names.push_back("v");
  EXPECT_THROW(opt->step(), ValueError) << "membership changed";
  opt->param_groups()[0].params.pop_back();
  opt->param_groups()[0].names.pop_back();
  p.set_grad(grad_of({1.0, 2.0}, DType::f64));
  EXPECT_THROW(opt->step(), ValueError) << "gradient of the wrong shape";
  EXPECT_EQ(values(p), kInit);
  p.set_grad(grad_of(kGrads[0], DType::f32));
  EXPECT_THROW(opt->step(), ValueError) << "gradient of the wrong dtype";
  EXPECT_EQ(opt->steps(), 0);
}

TEST(OptimKernels, LargeTensorsMatchScalarLoopForAnyThreadCount) {
  const int64_t n = 100003;  // above the parallel threshold, not a multiple of the chunking
  std::vector<float> p0(n), g0(n);
  for (int64_t i = 0; i < n; ++i) {
    p0[i] = std::sin(0.001f * i);
    g0[i] = std::cos(0.0037f * i) * 0.1f;
  }
  auto run = [&](int threads, bool adam) {
    set_num_threads(threads);
    Tensor p = Tensor::from_vector(p0, {n}), g = Tensor::from_vector(g0, {n});
    Tensor m = Tensor::zeros({n}), v = Tensor::zeros({n});
    for (int step = 1; step <= 3; ++step) {
      if (adam)
        kernels::adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, true, step);
      else
        kernels::sgd_update(p, g, m, 0.1, 0.9, 0.0, 1e-4, true, step == 1);
    }
    return p.to_vector<float>();
  };
  for (bool adam : {false, true}) {
    const std::vector<float> one = run(1, adam), two = run(2, adam);
    EXPECT_EQ(one, two) << "bitwise identical across thread counts";
    // Scalar loop in float, written as the op sequence of torch.
    std::vector<float> p = p0, m(n, 0.f), v(n, 0.f);
    for (int step = 1; step <= 3; ++step) {
      for (int64_t i = 0; i < n; ++i) {
        if (adam) {
          p[i] *= static_cast<float>(1 - 1e-3 * 0.01);
          m[i] = m[i] * 0.9f + static_cast<float>(1 - 0.9) * g0[i];
          v[i] = v[i] * 0.999f + static_cast<float>(1 - 0.999) * g0[i] * g0[i];
          const float denom =
              std::sqrt(v[i]) / static_cast<float>(std::sqrt(1 - std::pow(0.999, step))) + 1e-8f;
          p[i] += static_cast<float>(-1e-3 / (1 - std::pow(0.9, step))) * (m[i] / denom);
        } else {
          const float d = g0[i] + 1e-4f * p[i];
          m[i] = step == 1 ? d : m[i] * 0.9f + 1.0f * d;
          p[i] += -0.1f * (d + 0.9f * m[i]);
        }
      }
    }
    for (int64_t i = 0; i < n; i += 997) EXPECT_NEAR(one[i], p[i], 1e-6) << i;
  }
  set_num_threads(1);
}

TEST(OptimKernels, RejectMismatchedState) {
  Tensor p = Tensor::zeros({3}), g = Tensor::zeros({3});
  EXPECT_THROW(kernels::sgd_update(p, g, Tensor::zeros({4}), 0.1, 0.9, 0, 0, false, false),
               ValueError);
  EXPECT_THROW(
      kernels::sgd_update(p, Tensor::zeros({3}, DType::f64), Tensor(), 0.1, 0, 0, 0, false, false),
      ValueError);
  kernels::sgd_update(p, g, Tensor(), 0.1, 0, 0, 0, false, false);  // no buffer without momentum
  EXPECT_THROW(kernels::adam_update(p, g, Tensor::zeros({3}), Tensor::zeros({3}), 0.1, 0.9, 0.999,
                                    1e-8, 0, false, 0),
               ValueError);
  EXPECT_THROW(kernels::sgd_update(Tensor::zeros({3}, DType::i32), Tensor::zeros({3}, DType::i32),
                                   Tensor(), 0.1, 0, 0, 0, false, false),
               ValueError);
}
