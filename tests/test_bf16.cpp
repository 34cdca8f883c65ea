// bf16 compute precision on the CPU: the rounding kernel against a scalar reference written
// here (ties, NaN, infinities, denormals, overflow), the precision names, and gemm, conv2d
// (forward and both gradients) and the Linear / Conv2d / QConv2d / QLinear layers in bf16
// against the fp32 kernels applied to operands rounded by that reference: bit for bit, since
// bf16 is defined as exactly that.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "gradcheck.h"
#include "kernels/bf16.h"
#include "kernels/conv2d.h"
#include "kernels/gemm.h"
#include "kernels/precision.h"
#include "layers/compute_precision.h"
#include "layers/conv2d.h"
#include "layers/functional.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "quant/fake_quantize.h"
#include "quant/qlayers.h"
#include "quant/transform.h"

namespace tranq {
namespace {

using test::random_tensor;

uint32_t bits_of(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
float float_of(uint32_t u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// Reference rounding, written differently from kernels/bf16_math.h: keep the top 16 bits, then
// compare the dropped half with one half unit (0x8000) and round up above it, or at it when
// the kept part is odd. A carry into the exponent is the right result (up to infinity). NaN:
// torch's canonical 0x7fc0.
uint16_t ref_bf16_bits(float v) {
  const uint32_t u = bits_of(v);
  if (std::isnan(v)) return 0x7fc0;
  uint32_t hi = u >> 16;
  const uint32_t lo = u & 0xffffu;
  if (lo > 0x8000u || (lo == 0x8000u && (hi & 1u))) hi += 1;
  return static_cast<uint16_t>(hi);
}
float ref_bf16(float v) {
  return float_of(static_cast<uint32_t>(ref_bf16_bits(v)) << 16);
}

// A copy of an f32 tensor rounded by the reference.
Tensor ref_round(const Tensor& t) {
  Tensor c = t.contiguous().clone();
  float* p = c.data<float>();
  for (int64_t i = 0; i < c.numel(); ++i) p[i] = ref_bf16(p[i]);
  return c;
}

// Uniform f32 values with full 24-bit mantissas (so rounding changes almost all of them).
Tensor rand_f32(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return random_tensor(s, seed, lo, hi, DType::f32);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

// ---- rounding ------------------------------------------------------------------------------

TEST(RoundToBf16, PinnedValues) {
  struct Case {
    uint32_t in, out;
  };
  const Case cases[] = {
      {0x3f800000u, 0x3f800000u},  // 1: exact
      {0x3f808000u, 0x3f800000u},  // 1 + 2^-8: a tie, kept part even -> down
      {0x3f818000u, 0x3f820000u},  // 1 + 3*2^-8: a tie, kept part odd -> up
      {0x3f808001u, 0x3f810000u},  // just above the tie -> up
      {0x3f807fffu, 0x3f800000u},  // just below the tie -> down
      {0xbf818000u, 0xbf820000u},  // negative tie, odd -> away from zero
      {0x80000000u, 0x80000000u},  // -0
      {0x7f800000u, 0x7f800000u},  // +inf
      {0xff800000u, 0xff800000u},  // -inf
      {0x7f7fffffu, 0x7f800000u},  // max finite f32 overflows to +inf
      {0xff7fffffu, 0xff800000u},  // and its negative to -inf
      {0x7f7f7fffu, 0x7f7f0000u},  // below the tie under the largest bf16: stays finite
      {0x7f7f8000u, 0x7f800000u},  // the tie above the largest bf16 (odd) -> inf
      {0x00000001u, 0x00000000u},  // smallest denormal -> +0
      {0x00008000u, 0x00000000u},  // denormal tie, even -> down
      {0x00018000u, 0x00020000u},  // denormal tie, odd -> up
      {0x007fffffu, 0x00800000u},  // largest denormal -> smallest normal
      {0x807fffffu, 0x80800000u},  // and negative
      {0x7fc00000u, 0x7fc00000u},  // quiet NaN
      {0xffc00001u, 0x7fc00000u},  // negative NaN with payload -> canonical
      {0x7f800001u, 0x7fc00000u},  // signalling NaN -> canonical (would become inf if added to)
      {0x7fffffffu, 0x7fc00000u},  // NaN whose rounding would carry
  };
  std::vector<float> in;
  for (const Case& c : cases) in.push_back(float_of(c.in));
  Tensor x = Tensor::from_vector(in, {static_cast<int64_t>(in.size())});
  Tensor y = Tensor::empty(x.shape(), DType::f32);
  kernels::round_to_bf16(x, y);
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(bits_of(y.data<float>()[i]), cases[i].out) << std::hex << "input 0x" << cases[i].in;
    EXPECT_EQ(static_cast<uint32_t>(ref_bf16_bits(in[i])) << 16, cases[i].out)
        << std::hex << "reference, input 0x" << cases[i].in;
  }
}

TEST(RoundToBf16, MatchesReferenceOnRandomBitPatterns) {
  // Every exponent, sign and NaN pattern; every 64th pattern an exact tie.
  const int64_t n = 1 << 18;
  Rng rng(7);
  std::vector<float> in(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = static_cast<uint32_t>(rng.next_u64());
    if (i % 64 == 0) u = (u & 0xffff0000u) | 0x8000u;
    in[static_cast<size_t>(i)] = float_of(u);
  }
  Tensor x = Tensor::from_vector(in, {n});
  Tensor y = Tensor::empty({n}, DType::f32);
  kernels::round_to_bf16(x, y);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t got = bits_of(y.data<float>()[i]);
    const uint32_t want = static_cast<uint32_t>(ref_bf16_bits(in[static_cast<size_t>(i)])) << 16;
    if (got != want && bad++ < 5)
      ADD_FAILURE() << std::hex << "input 0x" << bits_of(in[static_cast<size_t>(i)]) << ": 0x"
                    << got << " != 0x" << want;
  }
  EXPECT_EQ(bad, 0);
  // In place gives the same.
  kernels::round_to_bf16(x, x);
  EXPECT_TRUE(same_bits(x, y));
}

TEST(RoundToBf16, RejectsOtherDtypesAndShapes) {
  Tensor d = Tensor::zeros({4}, DType::f64);
  EXPECT_THROW(kernels::round_to_bf16(d, d), ValueError);
  EXPECT_THROW(kernels::round_to_bf16(Tensor::zeros({4}), Tensor::zeros({5})), ValueError);
  EXPECT_THROW(kernels::bf16_rounded_copy(d, "op", "x"), ValueError);
}

TEST(ComputePrecision, ParseAndName) {
  EXPECT_EQ(parse_compute_precision("fp32"), ComputePrecision::fp32);
  EXPECT_EQ(parse_compute_precision("bf16"), ComputePrecision::bf16);
  EXPECT_STREQ(compute_precision_name(ComputePrecision::bf16), "bf16");
  EXPECT_STREQ(compute_precision_name(ComputePrecision::fp32), "fp32");
  try {
    parse_compute_precision("fp16");
    FAIL() << "fp16 accepted";
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fp16"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fp32, bf16"), std::string::npos) << msg;
  }
}

// ---- gemm ----------------------------------------------------------------------------------

TEST(GemmBf16, EqualsFp32GemmOfRoundedOperands) {
  const int64_t m = 13, k = 37, n = 21;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (double beta : {0.0, 1.0, -0.5}) {
        Tensor a = rand_f32(ta ? Shape{k, m} : Shape{m, k}, 1 + ta);
        Tensor b = rand_f32(tb ? Shape{n, k} : Shape{k, n}, 3 + tb);
        Tensor c0 = rand_f32({m, n}, 5);
        Tensor c = c0.clone(), ref = c0.clone(), fp32 = c0.clone();
        kernels::gemm(ta, tb, 0.75, a, b, beta, c, ComputePrecision::bf16);
        kernels::gemm(ta, tb, 0.75, ref_round(a), ref_round(b), beta, ref);
        kernels::gemm(ta, tb, 0.75, a, b, beta, fp32);
        EXPECT_TRUE(same_bits(c, ref)) << "ta " << ta << " tb " << tb << " beta " << beta;
        EXPECT_FALSE(same_bits(c, fp32)) << "bf16 must differ from fp32 on 24-bit inputs";
        // Operands untouched (rounded copies, not in place).
        EXPECT_TRUE(same_bits(a, rand_f32(a.shape(), 1 + ta)));
      }
}

TEST(GemmBf16, RejectsF64) {
  Tensor a = Tensor::zeros({2, 3}, DType::f64), b = Tensor::zeros({3, 2}, DType::f64);
  Tensor c = Tensor::zeros({2, 2}, DType::f64);
  EXPECT_THROW(kernels::gemm(false, false, 1.0, a, b, 0.0, c, ComputePrecision::bf16), ValueError);
  EXPECT_NO_THROW(kernels::gemm(false, false, 1.0, a, b, 0.0, c));
}

TEST(GemmBf16, DefaultIsFp32) {
  Tensor a = rand_f32({5, 6}, 1), b = rand_f32({6, 4}, 2);
  Tensor c1 = Tensor::empty({5, 4}), c2 = Tensor::empty({5, 4});
  kernels::gemm(false, false, 1.0, a, b, 0.0, c1);
  kernels::gemm(false, false, 1.0, a, b, 0.0, c2, ComputePrecision::fp32);
  EXPECT_TRUE(same_bits(c1, c2));
}

// ---- conv2d --------------------------------------------------------------------------------

struct ConvCase {
  Shape x, w;
  kernels::Conv2dParams p;
};

std::vector<ConvCase> conv_cases() {
  kernels::Conv2dParams plain{1, 1, 1, 1, 1, 1, 1};
  kernels::Conv2dParams strided{2, 2, 1, 1, 1, 1, 1};
  kernels::Conv2dParams grouped{1, 2, 0, 1, 2, 1, 2};
  kernels::Conv2dParams depthwise{1, 1, 1, 1, 1, 1, 6};
  return {{{2, 3, 9, 8}, {5, 3, 3, 3}, plain},
          {{3, 4, 11, 10}, {8, 4, 3, 3}, strided},
          {{2, 4, 9, 9}, {6, 2, 3, 2}, grouped},
          {{2, 6, 7, 7}, {6, 1, 3, 3}, depthwise},
          {{4, 16, 6, 6}, {8, 16, 1, 1}, plain}};
}

TEST(Conv2dBf16, ForwardAndGradientsEqualFp32OfRoundedOperands) {
  int idx = 0;
  for (const ConvCase& cc : conv_cases()) {
    SCOPED_TRACE("case " + std::to_string(idx));
    const uint64_t s = 100 + 10 * static_cast<uint64_t>(idx++);
    Tensor x = rand_f32(cc.x, s), w = rand_f32(cc.w, s + 1), bias = rand_f32({cc.w[0]}, s + 2);
    const Shape ys = kernels::conv2d_output_shape(cc.x, cc.w, cc.p);
    Tensor dy = rand_f32(ys, s + 3);

    Tensor y = Tensor::empty(ys), y_ref = Tensor::empty(ys), y32 = Tensor::empty(ys);
    kernels::conv2d_forward(x, w, bias, y, cc.p, ComputePrecision::bf16);
    kernels::conv2d_forward(ref_round(x), ref_round(w), bias, y_ref, cc.p);
    kernels::conv2d_forward(x, w, bias, y32, cc.p);
    EXPECT_TRUE(same_bits(y, y_ref));
    EXPECT_FALSE(same_bits(y, y32));

    Tensor dx = Tensor::empty(cc.x), dx_ref = Tensor::empty(cc.x);
    kernels::conv2d_backward_data(dy, w, dx, cc.p, ComputePrecision::bf16);
    kernels::conv2d_backward_data(ref_round(dy), ref_round(w), dx_ref, cc.p);
    EXPECT_TRUE(same_bits(dx, dx_ref));

    Tensor dw = Tensor::empty(cc.w), dw_ref = Tensor::empty(cc.w);
    kernels::conv2d_backward_weight(x, dy, dw, cc.p, ComputePrecision::bf16);
    kernels::conv2d_backward_weight(ref_round(x), ref_round(dy), dw_ref, cc.p);
    EXPECT_TRUE(same_bits(dw, dw_ref));
  }
}

TEST(Conv2dBf16, RejectsF64) {
  kernels::Conv2dParams p;
  Tensor x = Tensor::zeros({1, 2, 4, 4}, DType::f64), w = Tensor::zeros({3, 2, 3, 3}, DType::f64);
  Tensor y = Tensor::zeros({1, 3, 2, 2}, DType::f64);
  EXPECT_THROW(kernels::conv2d_forward(x, w, Tensor(), y, p, ComputePrecision::bf16), ValueError);
  EXPECT_THROW(kernels::conv2d_backward_data(y, w, x, p, ComputePrecision::bf16), ValueError);
  EXPECT_THROW(kernels::conv2d_backward_weight(x, y, w, p, ComputePrecision::bf16), ValueError);
  Conv2d conv(2, 3, 3, 1, 0, 1, 1, true, DType::f64);
  conv.set_compute_precision(ComputePrecision::bf16);
  EXPECT_THROW(conv.forward(x), ValueError);
  Linear lin(4, 3, true, DType::f64);
  lin.set_compute_precision(ComputePrecision::bf16);
  EXPECT_THROW(lin.forward(Tensor::zeros({2, 4}, DType::f64)), ValueError);
}

// ---- layers --------------------------------------------------------------------------------

// loss = sum(y * r): dL/dy = r exactly, so the reference gradients are kernel calls on r.
Tensor weighted_sum(const Tensor& y, const Tensor& r) {
  return ops::sum(ops::mul(y, r));
}

TEST(LayersBf16, LinearForwardAndGradients) {
  Linear lin(19, 7, true, DType::f32, 11);
  lin.set_compute_precision(ComputePrecision::bf16);
  Tensor x = rand_f32({6, 19}, 12).detach();
  x.set_requires_grad(true);
  Tensor y = lin.forward(x);
  Tensor r = rand_f32({6, 7}, 13);
  weighted_sum(y, r).backward();

  const Tensor W = lin.weight().detach(), b = lin.bias().detach();
  Tensor y_ref = Tensor::empty({6, 7});
  kernels::gemm(false, false, 1.0, Tensor::ones({6, 1}), b.view({1, 7}), 0.0, y_ref);
  kernels::gemm(false, true, 1.0, ref_round(x.detach()), ref_round(W), 1.0, y_ref);
  EXPECT_TRUE(same_bits(y.detach(), y_ref));

  Tensor dx = Tensor::empty({6, 19}), dW = Tensor::empty({7, 19}), db = Tensor::empty({1, 7});
  kernels::gemm(false, false, 1.0, ref_round(r), ref_round(W), 0.0, dx);
  kernels::gemm(true, false, 1.0, ref_round(r), ref_round(x.detach()), 0.0, dW);
  kernels::gemm(false, false, 1.0, Tensor::ones({1, 6}), r, 0.0, db);  // fp32: a bias sum
  EXPECT_TRUE(same_bits(x.grad(), dx));
  EXPECT_TRUE(same_bits(lin.weight().grad(), dW));
  EXPECT_TRUE(same_bits(lin.bias().grad(), db.view({7})));
  // Master weights and gradients stay f32.
  EXPECT_EQ(lin.weight().dtype(), DType::f32);
  EXPECT_EQ(lin.weight().grad().dtype(), DType::f32);
}

TEST(LayersBf16, MatmulForwardAndGradients) {
  Tensor a = rand_f32({5, 9}, 21).detach(), b = rand_f32({9, 4}, 22).detach();
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor y = ops::matmul(a, b, ComputePrecision::bf16);
  Tensor r = rand_f32({5, 4}, 23);
  weighted_sum(y, r).backward();
  Tensor y_ref = Tensor::empty({5, 4}), da = Tensor::empty({5, 9}), db = Tensor::empty({9, 4});
  kernels::gemm(false, false, 1.0, ref_round(a.detach()), ref_round(b.detach()), 0.0, y_ref);
  kernels::gemm(false, true, 1.0, ref_round(r), ref_round(b.detach()), 0.0, da);
  kernels::gemm(true, false, 1.0, ref_round(a.detach()), ref_round(r), 0.0, db);
  EXPECT_TRUE(same_bits(y.detach(), y_ref));
  EXPECT_TRUE(same_bits(a.grad(), da));
  EXPECT_TRUE(same_bits(b.grad(), db));
}

TEST(LayersBf16, Conv2dForwardAndGradients) {
  Conv2d conv(4, 6, 3, 2, 1, 1, 2, true, DType::f32, 31);
  EXPECT_EQ(conv.compute_precision(), ComputePrecision::fp32);
  conv.set_compute_precision(ComputePrecision::bf16);
  Tensor x = rand_f32({3, 4, 9, 8}, 32).detach();
  x.set_requires_grad(true);
  Tensor y = conv.forward(x);
  Tensor r = rand_f32(y.shape(), 33);
  weighted_sum(y, r).backward();

  kernels::Conv2dParams kp{2, 2, 1, 1, 1, 1, 2};
  const Tensor W = conv.weight().detach(), b = conv.bias().detach();
  Tensor y_ref = Tensor::empty(y.shape()), dx = Tensor::empty(x.shape()),
         dW = Tensor::empty(W.shape()), db = Tensor::empty(b.shape());
  kernels::conv2d_forward(ref_round(x.detach()), ref_round(W), b, y_ref, kp);
  kernels::conv2d_backward_data(ref_round(r), ref_round(W), dx, kp);
  kernels::conv2d_backward_weight(ref_round(x.detach()), ref_round(r), dW, kp);
  kernels::conv2d_backward_bias(r, db);
  EXPECT_TRUE(same_bits(y.detach(), y_ref));
  EXPECT_TRUE(same_bits(x.grad(), dx));
  EXPECT_TRUE(same_bits(conv.weight().grad(), dW));
  EXPECT_TRUE(same_bits(conv.bias().grad(), db));
}

// A model with nested containers: Sequential{Conv2d, Sequential{Conv2d, Flatten-free Linear}}.
class TwoLevel : public Module {
 public:
  TwoLevel() {
    conv =
        register_module("conv", std::make_shared<Conv2d>(2, 3, 3, 1, 1, 1, 1, true, DType::f32, 1));
    inner = register_module("inner", std::make_shared<Sequential>());
    inner->push_back(std::make_shared<Conv2d>(3, 4, 3, 1, 1, 1, 1, false, DType::f32, 2));
    fc = register_module("fc", std::make_shared<Linear>(4 * 5 * 5, 3, true, DType::f32, 3));
  }
  Tensor forward(const Tensor& x) override {
    return fc->forward(ops::flatten(inner->forward(conv->forward(x))));
  }
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<Sequential> inner;
  std::shared_ptr<Linear> fc;
};

std::vector<ComputePrecision> precisions_of(Module& m) {
  std::vector<ComputePrecision> out;
  for (auto& [name, mod] : m.named_modules())
    if (auto* s = dynamic_cast<ComputePrecisionSetting*>(mod))
      out.push_back(s->compute_precision());
  return out;
}

TEST(SetComputePrecision, ReachesNestedAndQuantizedLayers) {
  TwoLevel model;
  EXPECT_EQ(set_compute_precision(model, ComputePrecision::bf16), 3);
  for (ComputePrecision p : precisions_of(model)) EXPECT_EQ(p, ComputePrecision::bf16);
  Tensor x = rand_f32({2, 2, 5, 5}, 9);
  Tensor y_bf16 = model.forward(x).detach();
  set_compute_precision(model, ComputePrecision::fp32);
  Tensor y_fp32 = model.forward(x).detach();
  EXPECT_FALSE(same_bits(y_bf16, y_fp32)) << "the setting must reach the ops";

  // The QAT transform keeps a layer's precision, and the helper reaches quantized layers.
  set_compute_precision(model, ComputePrecision::bf16);
  quant::QuantizeOptions qo;
  qo.first_last_bits = 8;  // quantize the first conv and the last linear too
  const auto names = quant::quantize_model(model, qo);
  ASSERT_EQ(names.size(), 3u);
  const auto layers = quant::quantized_layers(model);
  ASSERT_EQ(layers.size(), 3u);
  for (auto& [n, q] : layers) EXPECT_EQ(q->compute_precision(), ComputePrecision::bf16) << n;
  EXPECT_EQ(set_compute_precision(model, ComputePrecision::fp32), 3);
  for (auto& [n, q] : layers) EXPECT_EQ(q->compute_precision(), ComputePrecision::fp32) << n;
  set_compute_precision(model, ComputePrecision::bf16);
  for (auto& [n, q] : layers) EXPECT_EQ(q->compute_precision(), ComputePrecision::bf16) << n;
}

TEST(SetComputePrecision, QuantizedLayersComputeInBf16) {
  quant::QuantSpec spec;
  spec.weight_bits = 4;
  spec.act_bits = 0;  // the input passes through, so the reference is a plain conv / linear
  Conv2d fc(3, 4, 3, 1, 1, 1, 1, true, DType::f32, 41);
  Linear fl(10, 5, true, DType::f32, 42);
  fc.set_compute_precision(ComputePrecision::bf16);  // copied by the quantized layers
  fl.set_compute_precision(ComputePrecision::bf16);
  quant::QConv2d qc(fc, spec);
  quant::QLinear ql(fl, spec);
  NoGradGuard ng;
  Tensor x = rand_f32({2, 3, 6, 6}, 43), v = rand_f32({3, 10}, 44);
  Tensor yc = qc.forward(x), yl = ql.forward(v);
  // Reference: the float op in bf16 on the fake-quantized weight (scale * codes / g, which is
  // generally not a bf16 value, so the rounding matters).
  Tensor wc = quant::fake_quantize(qc.weight(), qc.weight_scale(), qc.weight_range(), false);
  Tensor wl = quant::fake_quantize(ql.weight(), ql.weight_scale(), ql.weight_range(), false);
  kernels::Conv2dParams kp{1, 1, 1, 1, 1, 1, 1};
  Tensor yc_ref = Tensor::empty(yc.shape()), yl_ref = Tensor::empty(yl.shape());
  kernels::conv2d_forward(ref_round(x), ref_round(wc), fc.bias(), yc_ref, kp);
  kernels::gemm(false, false, 1.0, Tensor::ones({3, 1}), fl.bias().detach().view({1, 5}), 0.0,
                yl_ref);
  kernels::gemm(false, true, 1.0, ref_round(v), ref_round(wl), 1.0, yl_ref);
  EXPECT_TRUE(same_bits(yc, yc_ref));
  EXPECT_TRUE(same_bits(yl, yl_ref));
  qc.set_compute_precision(ComputePrecision::fp32);
  ql.set_compute_precision(ComputePrecision::fp32);
  EXPECT_FALSE(same_bits(qc.forward(x), yc));
  EXPECT_FALSE(same_bits(ql.forward(v), yl));
}

}  // namespace
}  // namespace tranq
