#pragma once
// Weight initialisers with PyTorch's formulas (torch.nn.init), drawing from a tranq::Rng so a
// model is a pure function of its seed. Values are drawn in double, in row-major order, then
// converted to the tensor's dtype and copied into it in place (the handle stays valid).
#include <cstdint>
#include <string>

#include "core/rng.h"
#include "core/tensor.h"

namespace tranq::init {

enum class FanMode { fan_in, fan_out };

// PyTorch's _calculate_fan_in_and_fan_out: for a weight [O, I, k...], fan_in = I * prod(k) and
// fan_out = O * prod(k). Needs at least 2 dimensions.
int64_t fan(const Tensor& weight, FanMode mode);
// calculate_gain('leaky_relu', a) = sqrt(2 / (1 + a^2)); a = 0 is ReLU's gain sqrt(2).
double leaky_relu_gain(double a);

void constant_(const Tensor& t, double value);
void uniform_(const Tensor& t, double lo, double hi, Rng& rng);
void normal_(const Tensor& t, double mean, double std, Rng& rng);
// kaiming_uniform_(t, a, mode, 'leaky_relu'): U(-b, b), b = gain(a) * sqrt(3 / fan).
void kaiming_uniform_(const Tensor& t, Rng& rng, double a = 0.0, FanMode mode = FanMode::fan_in);
// kaiming_normal_(t, a, mode, 'leaky_relu'): N(0, gain(a) / sqrt(fan)).
void kaiming_normal_(const Tensor& t, Rng& rng, double a = 0.0, FanMode mode = FanMode::fan_in);

// A stable 64-bit id of a name (FNV-1a), used to give each module of a model its own random
// stream: Rng(seed, stream_id("layer1.0.conv1")). Independent of std::hash and of the order in
// which modules are initialised.
uint64_t stream_id(const std::string& name);

}  // namespace tranq::init
