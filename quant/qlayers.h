#pragma once
// Quantized layers for QAT: QConv2d and QLinear fake-quantize their weights (signed codes) and
// their input (unsigned codes; signed where QuantSpec::signed_act_auto and calibration saw a
// negative input) with the modified LSQ quantizer of docs/trs-method.md, then run
// the float op. No post-scaling: the BN that follows absorbs the scale. A layer with no
// normalization after it (QuantSpec::output_scale; quantize_model sets it on the last Linear)
// multiplies its output by a learnable output scale instead: y = o * op(x_q, W_q) + b.
//
// State dict of a quantized layer (besides the float layer's weight/bias):
//   weight_scale       [1] or [O] (per channel)  parameter, or a frozen buffer under TRS
//   act_scale          [1]                       parameter (absent when the input is not quantized)
//   output_scale       weight_scale's shape      parameter (only with QuantSpec::output_scale)
//   act_signed         u8 [1]                    buffer: 1 for a signed input range (only with
//                                                QuantSpec::signed_act_auto and act_scale)
//   weight_codes       int8, weight's shape      buffer: codes at the last transition count
//   weight_prev_codes  int8, weight's shape      buffer: each weight's code before its last
//   transition
#include <memory>
#include <string>

#include "kernels/quant_math.h"
#include "layers/compute_precision.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace tranq::quant {

enum class ScaleInit {
  three_std,  // weights 3*std(W); activations 3*std(x)/sqrt(1-2/pi) (the method's rule)
  lsq,        // LSQ: step 2*mean|x|/sqrt(Qp), i.e. scale = g * 2*mean|x|/sqrt(Qp)
};
ScaleInit parse_scale_init(const std::string& s);  // "3std" | "lsq"

struct QuantSpec {
  int weight_bits = 2;
  int act_bits = 2;          // 0: the input is not quantized (e.g. the image into the first conv)
  bool per_channel = false;  // one weight scale per output channel
  bool learn_weight_scale = true;
  bool lsq_grad_scale = false;  // multiply scale gradients by 1/sqrt(N*Qp)
  ScaleInit scale_init = ScaleInit::three_std;
  // A learnable output scale o (one per output channel with per_channel, else one), applied
  // before the bias: y = o * op(x_q, W_q) + b. For a layer with no BN after it, which would
  // otherwise output op(x, W) / (|s_w| * |s_a|). Initialised to |s_w| * |s_a| whenever the
  // weight scale is initialised or the activation scale calibrated; o itself is used as is
  // (a plain multiplier, not a divisor, so no |.|).
  bool output_scale = false;
  // Calibration gives the input quantizer the signed range of weights ((lo, hi, g) of
  // kernels::weight_range, scale initialised as a weight's: 3*std) when the calibration batch
  // holds a negative input, e.g. MobileNetV2's linear bottleneck outputs, which the unsigned
  // range would clip to 0. Off: always the method's unsigned range.
  bool signed_act_auto = false;
};

// The float op runs in compute_precision(), taken from the float layer it replaces (and set
// model-wide by set_compute_precision); the quantizers stay fp32.
class QuantizedLayer : public Module, public ComputePrecisionSetting {
 public:
  const QuantSpec& spec() const { return spec_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& weight_scale() const { return weight_scale_; }
  const Tensor& act_scale() const { return act_scale_; }  // undefined when act_bits == 0
  // Undefined unless spec().output_scale.
  const Tensor& output_scale() const { return output_scale_; }
  const Tensor& codes() const { return codes_; }
  const Tensor& prev_codes() const { return prev_codes_; }
  kernels::QuantRange weight_range() const;
  // The input quantizer's range: unsigned, or signed after a calibration that set act_signed.
  kernels::QuantRange act_range() const;
  bool act_signed() const;
  const Tensor& act_signed_flag() const { return act_signed_; }  // the buffer; may be undefined

  // Sets the weight scale from the current latent weights (spec().scale_init), and the
  // output scale (if any) from the new weight scale (init_output_scale).
  void init_weight_scale();
  // Sets the output scale (if any) to |s_w| * |s_a| (|s_w| alone without act_scale), so the
  // output starts equal to the float layer's up to quantization error. Calibration calls it
  // after setting the activation scale.
  void init_output_scale();
  // While calibrating, forward() first sets the activation scale from its input.
  void set_calibrating(bool on) { calibrating_ = on; }
  // Integer mode: the layer computes with its stored codes (weight_codes, dequantized) instead
  // of quantizing the latent weights, as an exported integer model does (no weight gradient).
  void set_integer_mode(bool on) { integer_mode_ = on; }
  // code(latent weights) with the current scale, freshly computed (what export writes).
  Tensor compute_codes() const;

  // The quantized weight of the current latent weights and scale, computed ahead by the pass
  // that counts transitions after an optimizer step (kernels::quantize_weight_and_count, via
  // QatController), so a training step reads the latent weights once for both. The next
  // forward uses it instead of quantizing again (same values, same gradients) and drops it.
  // It must equal fake_quantize(weight(), weight_scale()) bit for bit: whoever changes the
  // weights or the scale in between must drop it (init_weight_scale does; moving the layer to
  // another device makes it unusable, and it is then ignored).
  void set_prepared_weight(Tensor y);
  void drop_prepared_weight() { prepared_weight_ = Tensor(); }
  const Tensor& prepared_weight() const { return prepared_weight_; }  // undefined when none

 protected:
  QuantizedLayer(Tensor weight, Tensor bias, const QuantSpec& spec);
  Tensor quantized_input(const Tensor& x);
  // Uses and drops a prepared weight (set_prepared_weight) when there is one.
  Tensor quantized_weight();
  const Tensor& bias() const { return bias_; }
  // With an output scale: y (the op's output without bias, [N, O, ...]) times the output scale,
  // plus the bias.
  Tensor scale_and_bias(const Tensor& y) const;

 private:
  QuantSpec spec_;
  Tensor weight_, bias_, weight_scale_, act_scale_, output_scale_, codes_, prev_codes_;
  Tensor act_signed_;  // u8 [1] buffer, or undefined
  // act_signed_'s value as of its version: read again only after a write (a state-dict load,
  // a calibration), so that a forward on a GPU does not wait to read it.
  mutable bool act_signed_cached_ = false;
  mutable uint64_t act_signed_version_ = ~uint64_t{0};
  // The storage the cache was read from: held weakly, so its address cannot be reused by a
  // later storage (Module::to) while the cache refers to it.
  mutable std::weak_ptr<Buffer> act_signed_storage_;
  Tensor prepared_weight_;
  bool calibrating_ = false;
  bool integer_mode_ = false;
};

class QConv2d : public QuantizedLayer {
 public:
  // Shares the float layer's weight and bias tensors (no copy).
  QConv2d(const Conv2d& fp, const QuantSpec& spec);
  Tensor forward(const Tensor& x) override;

 private:
  ops::Conv2dParams params_;
  int64_t in_channels_;
};

class QLinear : public QuantizedLayer {
 public:
  QLinear(const Linear& fp, const QuantSpec& spec);
  Tensor forward(const Tensor& x) override;

 private:
  int64_t in_features_;
};

}  // namespace tranq::quant
