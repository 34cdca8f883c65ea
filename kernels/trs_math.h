#pragma once
// The per-layer step of the TALR controller (optim/trs.h), header-only so that one copy of the
// formulas runs in TrsController::update, kernels/cpu/trs_update.cpp and
// kernels/cuda/trs_update.cu.
//
// Every multiply-add that a compiler could contract is written as an explicit fused
// multiply-add (trs_fma: std::fma on the host, __fma_rn on the device, both correctly rounded),
// and no product is left next to an addition, so no compiler has a contraction choice left:
// the host controller, the CPU kernel and the CUDA kernel compute the same bits whatever
// -march or -ffp-contract they are built with. The fused operations are the ones GCC 12 picks
// for the plain expressions under -march=native. No CUDA headers: under nvcc the functions become
// __host__ __device__.
#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"

namespace tranq::kernels {

// The scalars of one controller update (the same for every layer of a step).
struct TrsStep {
  double target = 0.0;     // R_t = TrsController::target(step)
  double momentum = 0.99;  // m (TrsController::momentum(), the resolved one)
  double eta = 0.0;        // additive gain (TrsController::gain())
  double talr_init = 1e-3;
  bool additive = false;  // TalrRule::additive, else multiplicative
  int64_t step = 0;       // the optimizer step (0-based), recorded with a bad row
};

// a*b + c rounded once.
TRANQ_HD inline double trs_fma(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// One layer's update for a measured transition rate k (TrsController::update checks k is in
// [0, 1]):
//   K = m*K + (1-m)*k;  additive: U = max(0, U + eta*(R - K));
//   multiplicative: s = m*s + (1-m)*s*R/(K + 1e-8), U = talr_init*s.
TRANQ_HD inline void trs_layer_step(double k, const TrsStep& p, double* K, double* s, double* U) {
  const double r = p.target;
  const double m = p.momentum;
  *K = trs_fma(m, *K, (1 - m) * k);
  if (p.additive) {
    const double u = trs_fma(p.eta, r - *K, *U);
    *U = 0.0 < u ? u : 0.0;  // std::max(0.0, u), NaN included
  } else {
    *s = trs_fma(m, *s, (1 - m) * *s * r / (*K + 1e-8));
    *U = p.talr_init * *s;
  }
}

// A counts row {numel, changed, ...} the controller can use: 0 <= changed <= max(numel, 0).
// A negative `changed` is the CUDA transition pass's bad-scale report.
TRANQ_HD inline bool trs_counts_valid(int64_t numel, int64_t changed) {
  return numel >= 0 && changed >= 0 && changed <= numel;
}

// One layer from its counts row: k = changed / max(numel, 1) (QatController's transition rate),
// trs_layer_step(k), k_last = k. Returns false (nothing written) for an invalid row.
TRANQ_HD inline bool trs_layer_update(int64_t numel, int64_t changed, const TrsStep& p, double* K,
                                      double* s, double* U, double* k_last) {
  if (!trs_counts_valid(numel, changed)) return false;
  const double n = static_cast<double>(numel > 1 ? numel : int64_t{1});
  const double k = static_cast<double>(changed) / n;
  trs_layer_step(k, p, K, s, U);
  *k_last = k;
  return true;
}

}  // namespace tranq::kernels
