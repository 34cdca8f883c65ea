#include "quant/qlayers.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "kernels/quantize.h"
#include "quant/fake_quantize.h"

namespace tranq::quant {

ScaleInit parse_scale_init(const std::string& s) {
  if (s == "3std") return ScaleInit::three_std;
  if (s == "lsq") return ScaleInit::lsq;
  TRANQ_THROW(ValueError, "unknown scale initialisation '{}'; expected 3std or lsq", s);
}

namespace {

// Statistics in double over a contiguous f32/f64 tensor (or one row of it).
struct Moments {
  double mean_abs = 0, std = 0;
};

template <class T>
Moments moments(const T* p, int64_t n) {
  double s = 0, sa = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += p[i];
    sa += std::fabs(static_cast<double>(p[i]));
  }
  const double mean = s / static_cast<double>(n);
  double v = 0;
  for (int64_t i = 0; i < n; ++i) v += (p[i] - mean) * (p[i] - mean);
  // Unbiased, as torch.std.
  return {sa / static_cast<double>(n),
          std::sqrt(v / static_cast<double>(std::max<int64_t>(n - 1, 1)))};
}

bool has_negative(const Tensor& t_in) {
  const Tensor t = t_in.contiguous();
  auto any = [&](const auto* p) {
    return std::any_of(p, p + t.numel(), [](auto v) { return v < 0; });
  };
  return t.dtype() == DType::f64 ? any(t.data<double>()) : any(t.data<float>());
}

Moments moments_of(const Tensor& t_in, int64_t row, int64_t rows) {
  Tensor t = t_in.contiguous();
  const int64_t per = t.numel() / rows;
  if (t.dtype() == DType::f64) return moments(t.data<double>() + row * per, per);
  return moments(t.data<float>() + row * per, per);
}

// The scale that puts the clip range where the chosen rule says.
double scale_from(const Moments& m, const kernels::QuantRange& r, ScaleInit init, bool activation) {
  double s;
  if (init == ScaleInit::lsq) {
    const double qp = r.binary_sign ? 1.0 : static_cast<double>(r.hi);
    s = r.g * 2.0 * m.mean_abs / std::sqrt(qp);
  } else {
    s = activation ? 3.0 * m.std / std::sqrt(1.0 - 2.0 / M_PI) : 3.0 * m.std;
  }
  return s > 0 ? s : 1e-8;  // an all-zero tensor still needs a usable scale
}

}  // namespace

QuantizedLayer::QuantizedLayer(Tensor weight, Tensor bias, const QuantSpec& spec)
    : spec_(spec), weight_(weight), bias_(bias) {
  weight_range();  // validates the bit width
  if (spec.act_bits != 0) act_range();
  register_parameter("weight", weight_);
  if (bias_.defined()) register_parameter("bias", bias_);
  const int64_t n_scales = spec.per_channel ? weight.size(0) : 1;
  Tensor ws = Tensor::ones({n_scales}, weight.dtype(), weight.device());
  weight_scale_ = spec.learn_weight_scale ? register_parameter("weight_scale", ws)
                                          : register_buffer("weight_scale", ws);
  if (spec.act_bits != 0)
    act_scale_ =
        register_parameter("act_scale", Tensor::ones({1}, weight.dtype(), weight.device()));
  if (spec.act_bits != 0 && spec.signed_act_auto)
    act_signed_ = register_buffer("act_signed", Tensor::zeros({1}, DType::u8, weight.device()));
  if (spec.output_scale)
    output_scale_ = register_parameter("output_scale",
                                       Tensor::ones({n_scales}, weight.dtype(), weight.device()));
  codes_ =
      register_buffer("weight_codes", Tensor::zeros(weight.shape(), DType::i8, weight.device()));
  prev_codes_ = register_buffer("weight_prev_codes",
                                Tensor::zeros(weight.shape(), DType::i8, weight.device()));
  init_weight_scale();
}

kernels::QuantRange QuantizedLayer::weight_range() const {
  return kernels::weight_range(spec_.weight_bits);
}
kernels::QuantRange QuantizedLayer::act_range() const {
  return act_signed() ? kernels::weight_range(spec_.act_bits)
                      : kernels::activation_range(spec_.act_bits);
}

bool QuantizedLayer::act_signed() const {
  if (!act_signed_.defined()) return false;
  // Keyed by storage too: Module::to gives the buffer new storage with its own count.
  const std::shared_ptr<Buffer>& storage = act_signed_.storage();
  const bool same_storage = !act_signed_storage_.expired() &&
                            !act_signed_storage_.owner_before(storage) &&
                            !storage.owner_before(act_signed_storage_);
  if (!same_storage || act_signed_.version() != act_signed_version_) {
    act_signed_cached_ = act_signed_.item() != 0;
    act_signed_version_ = act_signed_.version();
    act_signed_storage_ = storage;
  }
  return act_signed_cached_;
}

void QuantizedLayer::init_weight_scale() {
  drop_prepared_weight();
  const int64_t rows = weight_scale_.numel();
  std::vector<double> s(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    s[r] = scale_from(moments_of(weight_.to(Device::cpu()), r, rows), weight_range(),
                      spec_.scale_init, false);
  weight_scale_.copy_(
      Tensor::from_vector(s, {rows}).to(weight_scale_.dtype()).to(weight_scale_.device()));
  init_output_scale();
}

void QuantizedLayer::init_output_scale() {
  if (!output_scale_.defined()) return;
  auto s = weight_scale_.detach().to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  const double a =
      act_scale_.defined() ? std::fabs(act_scale_.detach().to(Device::cpu()).item()) : 1.0;
  for (double& v : s) v = std::fabs(v) * a;
  output_scale_.copy_(Tensor::from_vector(s, {static_cast<int64_t>(s.size())})
                          .to(output_scale_.dtype())
                          .to(output_scale_.device()));
}

Tensor QuantizedLayer::quantized_input(const Tensor& x_in) {
  if (spec_.act_bits == 0) return x_in;
  // The float layers take strided inputs; the quantizer needs contiguous ones. ops::reshape
  // copies such an input with autograd, so the gradient still reaches the strided input.
  const Tensor x = x_in.is_contiguous() ? x_in : ops::reshape(x_in, x_in.shape());
  if (calibrating_) {
    const Tensor host = x.detach().to(Device::cpu());
    if (act_signed_.defined()) act_signed_.fill_(has_negative(host) ? 1.0 : 0.0);
    // A signed input is scaled as weights are (3*std, not the half-normal rule of ReLU outputs).
    const double s =
        scale_from(moments_of(host, 0, 1), act_range(), spec_.scale_init, !act_signed());
    act_scale_.fill_(s);
    init_output_scale();
  }
  return fake_quantize(x, act_scale_, act_range(), spec_.lsq_grad_scale);
}

void QuantizedLayer::set_prepared_weight(Tensor y) {
  check_defined(y, "set_prepared_weight", "y");
  TRANQ_CHECK(y.shape() == weight_.shape() && y.dtype() == weight_.dtype() &&
                  y.device() == weight_.device() && y.is_contiguous(),
              "set_prepared_weight: expected a contiguous {} {} on {}, got {}",
              shape_str(weight_.shape()), dtype_name(weight_.dtype()), weight_.device().str(),
              tensor_str(y));
  prepared_weight_ = std::move(y);
}

Tensor QuantizedLayer::quantized_weight() {
  Tensor prepared = std::move(prepared_weight_);
  prepared_weight_ = Tensor();
  if (integer_mode_) {
    Tensor w = Tensor::empty(weight_.shape(), weight_.dtype(), weight_.device());
    kernels::dequantize_codes(codes_, weight_range(), w);
    return w;
  }
  if (prepared.defined() && prepared.device() == weight_.device())
    return fake_quantize_precomputed(weight_, weight_scale_, weight_range(), spec_.lsq_grad_scale,
                                     prepared);
  return fake_quantize(weight_, weight_scale_, weight_range(), spec_.lsq_grad_scale);
}

Tensor QuantizedLayer::compute_codes() const {
  Tensor values = Tensor::empty(weight_.shape(), weight_.dtype(), weight_.device());
  Tensor codes = Tensor::empty(weight_.shape(), DType::i8, weight_.device());
  kernels::fake_quantize_forward(weight_.detach(), weight_scale_.detach(), weight_range(), values,
                                 codes);
  return codes;
}

namespace {

// v ([1] or [C]) repeated to `shape` = [N, C, rest...] along dim 1, with autograd (the
// functional ops do not broadcast): products with ones, which are exact.
Tensor broadcast_channels(const Tensor& v, const Shape& shape) {
  const int64_t n = shape[0], c = shape[1], rest = shape_numel(shape) / (n * c);
  const DType dt = v.dtype();
  const Device dev = v.device();
  Tensor row = v.numel() == 1 ? ops::matmul(ops::reshape(v, {1, 1}), Tensor::ones({1, c}, dt, dev))
                              : ops::reshape(v, {1, c});
  // [N,1]@[1,C] -> [N,C], then [N*C,1]@[1,rest] -> [N*C,rest].
  Tensor nc = ops::matmul(Tensor::ones({n, 1}, dt, dev), row);
  if (rest == 1) return ops::reshape(nc, shape);
  Tensor ncr = ops::matmul(ops::reshape(nc, {n * c, 1}), Tensor::ones({1, rest}, dt, dev));
  return ops::reshape(ncr, shape);
}

}  // namespace

Tensor QuantizedLayer::scale_and_bias(const Tensor& y) const {
  Tensor out = ops::mul(y, broadcast_channels(output_scale_, y.shape()));
  return bias_.defined() ? ops::add(out, broadcast_channels(bias_, y.shape())) : out;
}

QConv2d::QConv2d(const Conv2d& fp, const QuantSpec& spec)
    : QuantizedLayer(fp.weight(), fp.bias(), spec),
      params_(fp.conv_params()),
      in_channels_(fp.in_channels()) {
  set_compute_precision(fp.compute_precision());
}

Tensor QConv2d::forward(const Tensor& x) {
  TRANQ_CHECK(x.dim() == 4 && x.size(1) == in_channels_,
              "QConv2d: expected input [N, {}, H, W], got {}", in_channels_, tensor_str(x));
  if (!output_scale().defined())
    return ops::conv2d(quantized_input(x), quantized_weight(), bias(), params_,
                       compute_precision());
  return scale_and_bias(
      ops::conv2d(quantized_input(x), quantized_weight(), Tensor(), params_, compute_precision()));
}

QLinear::QLinear(const Linear& fp, const QuantSpec& spec)
    : QuantizedLayer(fp.weight(), fp.bias(), spec), in_features_(fp.in_features()) {
  set_compute_precision(fp.compute_precision());
}

Tensor QLinear::forward(const Tensor& x) {
  TRANQ_CHECK(x.dim() == 2 && x.size(1) == in_features_, "QLinear: expected input [N, {}], got {}",
              in_features_, tensor_str(x));
  if (!output_scale().defined())
    return ops::linear(quantized_input(x), quantized_weight(), bias(), compute_precision());
  return scale_and_bias(
      ops::linear(quantized_input(x), quantized_weight(), Tensor(), compute_precision()));
}

}  // namespace tranq::quant
