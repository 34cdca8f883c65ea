// CUDA batch norm (plain and fused with residual + ReLU), pooling and cross-entropy against the
// CPU on the same random inputs. Batch norm and cross-entropy sum in another order than the
// CPU: within kTolF32 / kTolF64 (normalised, cuda_ops_test_util.h), running statistics
// included, and the same bits on a second run. Pooling is bit for bit (values and max-pool
// indices), with NaN, -inf and ties in the windows. Skipped, with the reason, without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda_ops_test_util.h"
#include "kernels/batch_norm.h"
#include "kernels/batch_norm_act.h"
#include "kernels/cross_entropy.h"
#include "kernels/pool2d.h"
#include "layers/functional.h"

using namespace tranq;
using test::empty_gpu;
using test::expect_equal_bits;
using test::expect_near_cpu;
using test::gpu;
using test::normalised_error;
using test::on_gpu;
using test::uniform;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};
// The last two cut each channel into several summation pieces (kernels/cuda/batch_norm_act.cu:
// 8192 values a piece), one with an uneven last piece, one with inner = 1.
const std::vector<Shape> kBnShapes = {{4, 3, 5, 7}, {9, 5},         {2, 16, 9, 9},
                                      {3, 2, 1, 1}, {5, 3, 61, 57}, {20000, 4}};

Tensor on(const Tensor& t, bool gpu) {
  return gpu ? on_gpu(t) : t;
}
Tensor maybe(bool defined, const Tensor& t) {
  return defined ? t : Tensor();
}

// Outputs of one batch_norm(_act) forward on one device.
struct BnOut {
  Tensor y, mean, invstd, rm, rv;
};

struct BnInputs {
  Tensor x, w, b, rm, rv, residual, dy;
};

BnInputs bn_inputs(const Shape& s, DType dt, uint64_t seed) {
  const int64_t c = s[1];
  BnInputs in;
  // Mean far from zero against the spread: the one-pass variance must not cancel.
  in.x = uniform(s, seed, dt, 4.0, 6.0);
  in.w = uniform({c}, seed + 1, dt, 0.5, 1.5);
  in.b = uniform({c}, seed + 2, dt);
  in.rm = uniform({c}, seed + 3, dt);
  in.rv = uniform({c}, seed + 4, dt, 0.5, 2.0);
  in.residual = uniform(s, seed + 5, dt);
  in.dy = uniform(s, seed + 6, dt);
  return in;
}

void expect_bn_close(const BnOut& g, const BnOut& c, DType dt, const std::string& what) {
  const double tol = test::tol_for(dt);
  expect_near_cpu(g.y, c.y, tol, what + " y");
  expect_near_cpu(g.mean, c.mean, tol, what + " save_mean");
  expect_near_cpu(g.invstd, c.invstd, tol, what + " save_invstd");
  if (c.rm.defined()) {
    expect_near_cpu(g.rm, c.rm, tol, what + " running_mean");
    expect_near_cpu(g.rv, c.rv, tol, what + " running_var");
  }
}

}  // namespace

TEST(CudaOpsBatchNorm, ForwardAndBackwardMatchCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 1;
  for (DType dt : kDtypes) {
    for (const Shape& s : kBnShapes) {
      const BnInputs in = bn_inputs(s, dt, seed += 10);
      const int64_t c = s[1];
      for (int variant = 0; variant < 4; ++variant) {
        const bool use_batch = variant != 3, affine = variant != 1, running = variant != 2;
        const std::string what = std::string("batch_norm ") + dtype_name(dt) + " " + shape_str(s) +
                                 " batch=" + std::to_string(use_batch) +
                                 " affine=" + std::to_string(affine) +
                                 " running=" + std::to_string(running);
        auto forward = [&](bool gpu) {
          BnOut o;
          o.rm = running ? on(in.rm, gpu).clone() : Tensor();
          o.rv = running ? on(in.rv, gpu).clone() : Tensor();
          const Device dev = gpu ? test::gpu() : Device::cpu();
          o.y = test::nan_filled(s, dt, dev);
          o.mean = test::nan_filled({c}, dt, dev);
          o.invstd = test::nan_filled({c}, dt, dev);
          kernels::batch_norm_forward(on(in.x, gpu), maybe(affine, on(in.w, gpu)),
                                      maybe(affine, on(in.b, gpu)), o.rm, o.rv, use_batch, 0.1,
                                      1e-5, o.y, o.mean, o.invstd);
          return o;
        };
        const BnOut fc = forward(false), fg = forward(true), fg2 = forward(true);
        expect_bn_close(fg, fc, dt, what);
        expect_equal_bits(fg2.y, fg.y, what + " y (two runs)");

        auto backward = [&](bool gpu, const BnOut& f, bool with_dx) {
          const Device dev = gpu ? test::gpu() : Device::cpu();
          std::vector<Tensor> g = {with_dx ? test::nan_filled(s, dt, dev) : Tensor(),
                                   affine ? test::nan_filled({c}, dt, dev) : Tensor(),
                                   affine ? test::nan_filled({c}, dt, dev) : Tensor()};
          kernels::batch_norm_backward(on(in.x, gpu), on(in.dy, gpu), maybe(affine, on(in.w, gpu)),
                                       f.mean, f.invstd, use_batch, g[0], g[1], g[2]);
          return g;
        };
        for (bool with_dx : {true, false}) {
          const std::vector<Tensor> bc = backward(false, fc, with_dx),
                                    bg = backward(true, fg, with_dx);
          const char* names[] = {" dx", " dweight", " dbias"};
          for (size_t i = 0; i < 3; ++i)
            if (bc[i].defined()) expect_near_cpu(bg[i], bc[i], test::tol_for(dt), what + names[i]);
        }
      }
    }
  }
}

TEST(CudaOpsBatchNorm, FusedActForwardAndBackwardMatchCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 500;
  for (DType dt : kDtypes) {
    for (const Shape& s : kBnShapes) {
      const BnInputs in = bn_inputs(s, dt, seed += 10);
      const int64_t c = s[1];
      for (int variant = 0; variant < 8; ++variant) {
        const bool relu = variant & 1, residual = variant & 2, use_batch = !(variant & 4);
        const std::string what = std::string("batch_norm_act ") + dtype_name(dt) + " " +
                                 shape_str(s) + " relu=" + std::to_string(relu) +
                                 " residual=" + std::to_string(residual) +
                                 " batch=" + std::to_string(use_batch);
        auto forward = [&](bool gpu) {
          BnOut o;
          o.rm = on(in.rm, gpu).clone();
          o.rv = on(in.rv, gpu).clone();
          const Device dev = gpu ? test::gpu() : Device::cpu();
          o.y = test::nan_filled(s, dt, dev);
          o.mean = test::nan_filled({c}, dt, dev);
          o.invstd = test::nan_filled({c}, dt, dev);
          kernels::batch_norm_act_forward(
              on(in.x, gpu), on(in.w, gpu), on(in.b, gpu), o.rm, o.rv, use_batch, 0.1, 1e-5,
              maybe(residual, on(in.residual, gpu)), relu, o.y, o.mean, o.invstd);
          return o;
        };
        const BnOut fc = forward(false), fg = forward(true);
        expect_bn_close(fg, fc, dt, what);

        // The backward reads y for the ReLU mask. Feed both devices the CPU's y, so that an
        // output rounded to the other side of zero cannot flip a mask bit.
        for (bool with_dres : {false, true}) {
          auto backward = [&](bool gpu, const BnOut& f) {
            const Device dev = gpu ? test::gpu() : Device::cpu();
            std::vector<Tensor> g = {
                test::nan_filled(s, dt, dev), with_dres ? test::nan_filled(s, dt, dev) : Tensor(),
                test::nan_filled({c}, dt, dev), test::nan_filled({c}, dt, dev)};
            kernels::batch_norm_act_backward(on(in.x, gpu), on(fc.y, gpu), on(in.dy, gpu),
                                             on(in.w, gpu), f.mean, f.invstd, use_batch, relu, g[0],
                                             g[1], g[2], g[3]);
            return g;
          };
          const std::vector<Tensor> bc = backward(false, fc), bg = backward(true, fg);
          const char* names[] = {" dx", " dresidual", " dweight", " dbias"};
          for (size_t i = 0; i < bc.size(); ++i) {
            if (!bc[i].defined()) continue;
            const std::string w = what + names[i] + (with_dres ? " (with dresidual)" : "");
            if (i == 1) {
              expect_equal_bits(bg[i], bc[i], w);  // dz: a mask, no arithmetic
            } else {
              expect_near_cpu(bg[i], bc[i], test::tol_for(dt), w);
            }
          }
        }
      }
    }
  }
}

namespace {

// Pooling input: multiples of 1/4 (many ties) with NaN and -inf at fixed spots.
Tensor pool_input(const Shape& s, uint64_t seed, DType dt, bool specials) {
  std::vector<double> v = uniform(s, seed, DType::f64, -4.0, 4.0).to_vector<double>();
  for (double& x : v) x = std::round(x * 4) / 4;
  if (specials && v.size() > 40) {
    v[3] = std::numeric_limits<double>::quiet_NaN();
    v[17] = -std::numeric_limits<double>::infinity();
    v[18] = -std::numeric_limits<double>::infinity();
    v[40] = std::numeric_limits<double>::infinity();
  }
  return Tensor::from_vector(v, s).to(dt);
}

struct PoolCase {
  Shape x;
  kernels::Pool2dGeometry g;
};

const std::vector<PoolCase> kPoolCases = {
    {{2, 3, 8, 8}, {2, 2, 2, 2, 0, 0}},   {{2, 3, 9, 11}, {3, 3, 2, 2, 1, 1}},
    {{1, 4, 7, 7}, {3, 3, 1, 1, 1, 1}},   {{2, 2, 6, 5}, {2, 2, 1, 1, 0, 0}},
    {{1, 3, 10, 10}, {3, 3, 3, 3, 0, 0}}, {{3, 2, 9, 8}, {3, 2, 2, 1, 1, 1}},
    {{1, 1, 5, 9}, {1, 3, 1, 4, 0, 1}},
};

std::string pool_label(const PoolCase& k, DType dt) {
  return fmt::format("x {} k {}x{} s {}x{} p {}x{} {}", shape_str(k.x), k.g.kernel_h, k.g.kernel_w,
                     k.g.stride_h, k.g.stride_w, k.g.pad_h, k.g.pad_w, dtype_name(dt));
}

}  // namespace

TEST(CudaOpsPool2d, MaxAndAvgEqualCpuBitForBit) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 1;
  for (DType dt : kDtypes) {
    for (const PoolCase& k : kPoolCases) {
      const std::string what = pool_label(k, dt);
      const Shape out = kernels::pool2d_output_shape(Tensor::empty(k.x), k.g, "test");
      const Tensor x = pool_input(k.x, ++seed, dt, true), gx = on_gpu(x);
      const Tensor dy = pool_input(out, ++seed, dt, false), gdy = on_gpu(dy);

      Tensor y = Tensor::empty(out, dt), idx = Tensor::empty(out, DType::i32);
      Tensor gy = empty_gpu(out, dt), gidx = empty_gpu(out, DType::i32);
      kernels::max_pool2d_forward(x, k.g, y, idx);
      kernels::max_pool2d_forward(gx, k.g, gy, gidx);
      expect_equal_bits(gy, y, what + " max y");
      expect_equal_bits(gidx, idx, what + " max indices");

      Tensor dx = Tensor::empty(k.x, dt), gdx = test::nan_filled(k.x, dt, test::gpu());
      kernels::max_pool2d_backward(dy, idx, k.g, dx);
      kernels::max_pool2d_backward(gdy, gidx, k.g, gdx);
      expect_equal_bits(gdx, dx, what + " max dx");

      const Tensor xf = pool_input(k.x, ++seed, dt, false);  // avg: finite inputs
      kernels::avg_pool2d_forward(xf, k.g, y);
      kernels::avg_pool2d_forward(on_gpu(xf), k.g, gy);
      expect_equal_bits(gy, y, what + " avg y");
      Tensor gdx2 = test::nan_filled(k.x, dt, test::gpu());
      kernels::avg_pool2d_backward(dy, k.g, dx);
      kernels::avg_pool2d_backward(gdy, k.g, gdx2);
      expect_equal_bits(gdx2, dx, what + " avg dx");
    }
    for (const Shape& s : {Shape{2, 3, 7, 7}, Shape{4, 5, 1, 1}, Shape{1, 2, 33, 65}}) {
      const std::string what = std::string("global avg ") + shape_str(s) + " " + dtype_name(dt);
      const Shape out{s[0], s[1], 1, 1};
      const Tensor x = uniform(s, ++seed, dt), dy = uniform(out, ++seed, dt);
      Tensor y = Tensor::empty(out, dt), gy = empty_gpu(out, dt);
      kernels::global_avg_pool2d_forward(x, y);
      kernels::global_avg_pool2d_forward(on_gpu(x), gy);
      expect_equal_bits(gy, y, what + " y");
      Tensor dx = Tensor::empty(s, dt), gdx = empty_gpu(s, dt);
      kernels::global_avg_pool2d_backward(dy, dx);
      kernels::global_avg_pool2d_backward(on_gpu(dy), gdx);
      expect_equal_bits(gdx, dx, what + " dx");
    }
  }
}

TEST(CudaOpsCrossEntropy, ForwardAndBackwardMatchCpu) {
  TRANQ_REQUIRE_CUDA_OPS();
  uint64_t seed = 1;
  for (DType dt : kDtypes) {
    for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{300}}) {
      for (int64_t c : {int64_t{1}, int64_t{10}, int64_t{1000}, int64_t{1001}}) {
        for (DType lt : {DType::i32, DType::i64}) {
          for (double eps : {0.0, 0.1}) {
            const std::string what = fmt::format("cross_entropy {} n={} c={} {} eps={}",
                                                 dtype_name(dt), n, c, dtype_name(lt), eps);
            const Tensor logits = uniform({n, c}, ++seed, dt, -8.0, 8.0);
            Rng rng(++seed);
            std::vector<int64_t> lv(static_cast<size_t>(n));
            for (int64_t& v : lv) v = static_cast<int64_t>(rng.below(static_cast<uint64_t>(c)));
            const Tensor labels = Tensor::from_vector(lv, {n}).to(lt);
            Tensor loss = Tensor::empty({}, dt), probs = Tensor::empty({n, c}, dt);
            Tensor gloss = empty_gpu({}, dt), gprobs = empty_gpu({n, c}, dt);
            kernels::cross_entropy_forward(logits, labels, eps, loss, probs);
            kernels::cross_entropy_forward(on_gpu(logits), on_gpu(labels), eps, gloss, gprobs);
            expect_near_cpu(gloss, loss, test::tol_for(dt), what + " loss");
            expect_near_cpu(gprobs, probs, test::tol_for(dt), what + " probs");
            Tensor gloss2 = empty_gpu({}, dt), gprobs2 = empty_gpu({n, c}, dt);
            kernels::cross_entropy_forward(on_gpu(logits), on_gpu(labels), eps, gloss2, gprobs2);
            expect_equal_bits(gloss2, gloss, what + " loss (two runs)");

            // Backward from the CPU's probabilities on both sides.
            const Tensor dloss = Tensor::full({}, 0.7, dt);
            Tensor dl = Tensor::empty({n, c}, dt), gdl = empty_gpu({n, c}, dt);
            kernels::cross_entropy_backward(probs, labels, eps, dloss, dl);
            kernels::cross_entropy_backward(on_gpu(probs), on_gpu(labels), eps, on_gpu(dloss), gdl);
            // One product and two differences per element, possibly fused on the CPU.
            const double ulps = dt == DType::f64 ? 0x1.0p-50 : 0x1.0p-21;
            expect_near_cpu(gdl, dl, ulps, what + " dlogits");
          }
        }
      }
    }
  }
}

TEST(CudaOpsCrossEntropy, BadLabelsAreRefusedByTheOpAndHarmlessInTheKernel) {
  TRANQ_REQUIRE_CUDA_OPS();
  const Tensor logits = on_gpu(uniform({2, 3}, 1, DType::f32));
  const Tensor high = on_gpu(Tensor::from_vector<int32_t>({0, 3}, {2}));
  const Tensor low = on_gpu(Tensor::from_vector<int64_t>({-1, 0}, {2}));
  // The op checks the labels (on a host copy) unless its caller says it has.
  EXPECT_THROW(ops::cross_entropy(logits, high), ValueError);
  EXPECT_THROW(ops::cross_entropy(logits, low), ValueError);
  if (gpu().is_cpu()) return;  // the CPU kernel refuses bad labels itself (test_cross_entropy)
  // The kernel does not look at the values on the host: a bad label gives a NaN loss, reads
  // nothing outside the row, and leaves the other rows' probabilities and gradients intact.
  for (const Tensor& bad : {high, low}) {
    Tensor loss = empty_gpu({}, DType::f32), probs = empty_gpu({2, 3}, DType::f32);
    kernels::cross_entropy_forward(logits, bad, 0.0, loss, probs);
    EXPECT_TRUE(std::isnan(loss.item()));
    const Tensor good = on_gpu(Tensor::from_vector<int32_t>({0, 0}, {2}));
    Tensor gloss = empty_gpu({}, DType::f32), gprobs = empty_gpu({2, 3}, DType::f32);
    kernels::cross_entropy_forward(logits, good, 0.0, gloss, gprobs);
    expect_equal_bits(probs, gprobs, "probabilities with a bad label");
    Tensor dl = empty_gpu({2, 3}, DType::f32);
    kernels::cross_entropy_backward(probs, bad, 0.0, on_gpu(Tensor::full({}, 1.0)), dl);
    EXPECT_TRUE(std::isfinite(normalised_error(dl, probs)));  // no NaN written
  }
  const Tensor checked = ops::cross_entropy(logits, high, 0.0, /*labels_checked=*/true);
  EXPECT_TRUE(std::isnan(checked.item()));
}
