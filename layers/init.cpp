#include "layers/init.h"

#include <cmath>

namespace tranq::init {
namespace {

// Stores gen(i) for i = 0..numel-1 (row-major) into t (any dtype/device, maybe strided).
template <class Gen>
void fill_with(const Tensor& t, Gen&& gen) {
  check_defined(t, "init", "tensor");
  TRANQ_CHECK(is_floating(t.dtype()), "init: expected a f32 or f64 tensor, got {}", tensor_str(t));
  const bool direct = t.device().is_cpu() && t.is_contiguous();
  Tensor dst = direct ? t : Tensor::empty(t.shape(), t.dtype());
  const int64_t n = t.numel();
  if (dst.dtype() == DType::f32) {
    float* p = dst.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(gen());
  } else {
    double* p = dst.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = gen();
  }
  if (!direct) t.copy_(dst.to(t.device()));
}

}  // namespace

int64_t fan(const Tensor& weight, FanMode mode) {
  TRANQ_CHECK(weight.dim() >= 2, "fan: needs a weight with at least 2 dimensions, got {}",
              tensor_str(weight));
  int64_t receptive = 1;
  for (int64_t d = 2; d < weight.dim(); ++d) receptive *= weight.size(d);
  return (mode == FanMode::fan_in ? weight.size(1) : weight.size(0)) * receptive;
}

double leaky_relu_gain(double a) {
  return std::sqrt(2.0 / (1.0 + a * a));
}

void constant_(const Tensor& t, double value) {
  check_defined(t, "init::constant_", "tensor");
  t.fill_(value);
}

void uniform_(const Tensor& t, double lo, double hi, Rng& rng) {
  fill_with(t, [&] { return rng.uniform(lo, hi); });
}

void normal_(const Tensor& t, double mean, double std, Rng& rng) {
  // Box-Muller yields two independent normals per pair of uniforms; use both (Rng::normal
  // keeps one), which halves the cost of initialising large models.
  double spare = 0;
  bool have_spare = false;
  fill_with(t, [&] {
    if (have_spare) {
      have_spare = false;
      return mean + std * spare;
    }
    double u1 = rng.uniform();
    const double u2 = rng.uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
    spare = r * std::sin(a);
    have_spare = true;
    return mean + std * r * std::cos(a);
  });
}

void kaiming_uniform_(const Tensor& t, Rng& rng, double a, FanMode mode) {
  const double bound = leaky_relu_gain(a) * std::sqrt(3.0 / static_cast<double>(fan(t, mode)));
  uniform_(t, -bound, bound, rng);
}

void kaiming_normal_(const Tensor& t, Rng& rng, double a, FanMode mode) {
  const double std = leaky_relu_gain(a) / std::sqrt(static_cast<double>(fan(t, mode)));
  normal_(t, 0.0, std, rng);
}

uint64_t stream_id(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace tranq::init
