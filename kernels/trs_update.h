#pragma once
// One TALR controller update for every quantized layer on the state's device
// (docs/qat.md, optim/trs.h): reads the transition counts table the passes of
// kernels/transition_stats.h wrote (weight_transition_pass_into) and updates the per-layer
// state K (EMA of the rate), s (multiplicative factor), U (the TALR) and k (last rate) in place,
// with the formulas of TrsController::update (kernels/trs_math.h, shared by both backends).
//
// Arguments: counts i64 [L, 4] ({numel, changed, oscillated, near} per layer); K, s, U, k f64
// [L]; bad_step i64 [L]; all contiguous on one device. A row with invalid counts (changed < 0:
// the CUDA pass found a zero, non-finite or too small scale (quant_scale_usable); or changed >
// numel) leaves that layer's K, s, U, k unchanged and, if bad_step[i] is 0, sets bad_step[i] =
// p.step + 1, so the first failing step survives until the host looks
// (optim::TrsDeviceState::sync_to raises it). The host controller instead throws at once; a device
// kernel cannot, and checking every step would cost a synchronisation per step.
//
// Both backends run the one formula of kernels/trs_math.h, whose multiply-adds are explicit
// fused operations, so no compiler can contract them differently: the CPU version equals
// TrsController::update bit for bit (tests/test_trs_device.cpp), and the CUDA version (one
// thread per layer, no synchronisation) equals the CPU version bit for bit
// (tests/test_cuda_trs_device.cpp, which also checks |cuda - cpu| <= 1e-12 * |cpu| first, so a
// formula slip and a rounding difference give different messages).
#include "core/tensor.h"
#include "kernels/trs_math.h"

namespace tranq::kernels {

void trs_update(const Tensor& counts, const TrsStep& p, const Tensor& K, const Tensor& s,
                const Tensor& U, const Tensor& k, const Tensor& bad_step);

// Shape, dtype, contiguity and device checks of every backend (ValueError).
void check_trs_update_args(const char* op, const Tensor& counts, const Tensor& K, const Tensor& s,
                           const Tensor& U, const Tensor& k, const Tensor& bad_step);

namespace cpu {
void trs_update(const Tensor& counts, const TrsStep& p, const Tensor& K, const Tensor& s,
                const Tensor& U, const Tensor& k, const Tensor& bad_step);
}  // namespace cpu

namespace cuda {
void trs_update(const Tensor& counts, const TrsStep& p, const Tensor& K, const Tensor& s,
                const Tensor& U, const Tensor& k, const Tensor& bad_step);
}  // namespace cuda

}  // namespace tranq::kernels
