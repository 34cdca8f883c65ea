// Convolution throughput on the CIFAR ResNet-20 layer shapes (batch 128, f32), per direction,
// plus the sum over one training step's convolutions. Each shape is first checked against a
// naive loop on a 2-image batch so a fast wrong kernel cannot post a number.
//   build-*/benchmarks/bench_conv2d --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/conv2d.h"

using namespace tranq;

namespace {

struct Layer {
  const char* name;
  int64_t cin, cout, hw, k, stride;
  int count;  // occurrences in ResNet-20
};

const std::vector<Layer>& layers() {
  static const std::vector<Layer> l = {
      {"conv1_3to16_32", 3, 16, 32, 3, 1, 1}, {"s1_16to16_32", 16, 16, 32, 3, 1, 6},
      {"s2a_16to32_s2", 16, 32, 32, 3, 2, 1}, {"s2proj_1x1_s2", 16, 32, 32, 1, 2, 1},
      {"s2_32to32_16", 32, 32, 16, 3, 1, 5},  {"s3a_32to64_s2", 32, 64, 16, 3, 2, 1},
      {"s3proj_1x1_s2", 32, 64, 16, 1, 2, 1}, {"s3_64to64_8", 64, 64, 8, 3, 1, 5},
  };
  return l;
}

constexpr int64_t kBatch = 128;

kernels::Conv2dParams params_of(const Layer& l) {
  kernels::Conv2dParams p;
  p.stride_h = p.stride_w = l.stride;
  p.pad_h = p.pad_w = l.k / 2;
  return p;
}

Tensor random(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty(s, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.uniform(-1, 1));
  return t;
}

struct Problem {
  Tensor x, w, y, dy, dx, dw;
  kernels::Conv2dParams p;
  double macs;
};

Problem make(const Layer& l, int64_t batch) {
  Problem pr;
  pr.p = params_of(l);
  pr.x = random({batch, l.cin, l.hw, l.hw}, 1);
  pr.w = random({l.cout, l.cin, l.k, l.k}, 2);
  const Shape ys = kernels::conv2d_output_shape(pr.x.shape(), pr.w.shape(), pr.p);
  pr.y = Tensor::empty(ys, DType::f32);
  pr.dy = random(ys, 3);
  pr.dx = Tensor::empty_like(pr.x);
  pr.dw = Tensor::empty_like(pr.w);
  pr.macs = static_cast<double>(shape_numel(ys)) * l.cin * l.k * l.k;
  return pr;
}

// Max relative error of the three directions against naive loops on a 2-image batch.
double validate(const Layer& l) {
  Problem pr = make(l, 2);
  kernels::conv2d_forward(pr.x, pr.w, Tensor(), pr.y, pr.p);
  kernels::conv2d_backward_data(pr.dy, pr.w, pr.dx, pr.p);
  kernels::conv2d_backward_weight(pr.x, pr.dy, pr.dw, pr.p);
  const float *x = pr.x.data<float>(), *w = pr.w.data<float>(), *dy = pr.dy.data<float>();
  const int64_t C = l.cin, O = l.cout, H = l.hw, K = l.k, OH = pr.y.size(2), pad = l.k / 2;
  std::vector<double> y(pr.y.numel(), 0.0), dx(pr.x.numel(), 0.0), dw(pr.w.numel(), 0.0);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OH; ++ow)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < K; ++kh)
              for (int64_t kw = 0; kw < K; ++kw) {
                const int64_t ih = oh * l.stride - pad + kh, iw = ow * l.stride - pad + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= H) continue;
                const int64_t yi = ((n * O + o) * OH + oh) * OH + ow;
                const int64_t xi = ((n * C + c) * H + ih) * H + iw;
                const int64_t wi = ((o * C + c) * K + kh) * K + kw;
                y[yi] += double(x[xi]) * w[wi];
                dx[xi] += double(dy[yi]) * w[wi];
                dw[wi] += double(dy[yi]) * x[xi];
              }
  double err = 0;
  auto cmp = [&](const std::vector<double>& want, const Tensor& got) {
    const float* g = got.data<float>();
    for (size_t i = 0; i < want.size(); ++i)
      err = std::max(err, std::fabs(g[i] - want[i]) / std::max(1.0, std::fabs(want[i])));
  };
  cmp(y, pr.y);
  cmp(dx, pr.dx);
  cmp(dw, pr.dw);
  return err;
}

enum class Dir { forward, backward_data, backward_weight };

void run(const Problem& pr, Dir d) {
  switch (d) {
    case Dir::forward:
      kernels::conv2d_forward(pr.x, pr.w, Tensor(), pr.y, pr.p);
      break;
    case Dir::backward_data:
      kernels::conv2d_backward_data(pr.dy, pr.w, pr.dx, pr.p);
      break;
    case Dir::backward_weight:
      kernels::conv2d_backward_weight(pr.x, pr.dy, pr.dw, pr.p);
      break;
  }
}

void bm_layer(benchmark::State& state, const Layer& l, Dir d) {
  const double err = validate(l);
  if (!(err < 1e-4)) {
    state.SkipWithError(("mismatch against the naive loops: " + std::to_string(err)).c_str());
    return;
  }
  const Problem pr = make(l, kBatch);
  for (auto _ : state) {
    run(pr, d);
    benchmark::ClobberMemory();
  }
  state.counters["FLOPS"] =
      benchmark::Counter(2 * pr.macs * state.iterations(), benchmark::Counter::kIsRate);
}

// Every convolution of one ResNet-20 training step: all forwards, all weight gradients, and
// the data gradients of every layer but the first (its input needs none).
void bm_resnet20_step(benchmark::State& state) {
  std::vector<Problem> probs;
  double flops = 0;
  for (const Layer& l : layers()) {
    probs.push_back(make(l, kBatch));
    flops += 2 * probs.back().macs * l.count * (l.cin == 3 ? 2 : 3);
  }
  for (auto _ : state) {
    for (size_t i = 0; i < probs.size(); ++i) {
      const Layer& l = layers()[i];
      for (int r = 0; r < l.count; ++r) {
        run(probs[i], Dir::forward);
        if (l.cin != 3) run(probs[i], Dir::backward_data);
        run(probs[i], Dir::backward_weight);
      }
    }
    benchmark::ClobberMemory();
  }
  state.counters["FLOPS"] =
      benchmark::Counter(flops * state.iterations(), benchmark::Counter::kIsRate);
}

int register_all() {
  const std::pair<Dir, const char*> dirs[] = {{Dir::forward, "fwd"},
                                              {Dir::backward_data, "bwd_data"},
                                              {Dir::backward_weight, "bwd_weight"}};
  for (const Layer& l : layers()) {
    for (const auto& [d, dname] : dirs) {
      benchmark::RegisterBenchmark((std::string("conv2d/") + l.name + "/" + dname).c_str(),
                                   [&l, d = d](benchmark::State& s) { bm_layer(s, l, d); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  benchmark::RegisterBenchmark("conv2d/resnet20_step_all_convs", bm_resnet20_step)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  return 0;
}

const int registered = register_all();

}  // namespace
