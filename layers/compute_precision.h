#pragma once
// Per-layer compute precision (kernels/precision.h). Layers whose forward is a matrix product
// (Conv2d, Linear, and quant::QConv2d / QLinear) derive from ComputePrecisionSetting and pass
// their precision to the op; set_compute_precision sets it on a whole model. There is no
// global mode: a model is in bf16 because its layers were set so.
#include <cstdint>

#include "kernels/precision.h"
#include "layers/module.h"

namespace tranq {

class ComputePrecisionSetting {
 public:
  virtual ~ComputePrecisionSetting() = default;
  ComputePrecision compute_precision() const { return precision_; }
  void set_compute_precision(ComputePrecision p) { precision_ = p; }

 private:
  ComputePrecision precision_ = ComputePrecision::fp32;
};

// Sets p on `root` and every module below it that has a compute precision; returns how many
// it set. bf16 on a model with f64 parameters fails at the first forward (ValueError).
int64_t set_compute_precision(Module& root, ComputePrecision p);

}  // namespace tranq
