#pragma once
// The per-layer step of the TALR controller (optim/trs.h), header-only so that the host
// controller's formulas run unchanged in kernels/cpu/trs_update.cpp and kernels/cuda/
// trs_update.cu. The expressions are written exactly as in TrsController::update (same operand
// order and grouping), so a compiler that contracts multiply-adds makes the same choice for
// both on the host and the CPU kernel equals the controller bit for bit. nvcc contracts on its
// own terms, so the device result may differ from the host in the last bits (see
// kernels/trs_update.h). No CUDA headers: under nvcc the function becomes __host__ __device__.
#include <cstdint>

#ifndef TRANQ_HD
#if defined(__CUDACC__)
#define TRANQ_HD __host__ __device__
#else
#define TRANQ_HD
#endif
#endif

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

// A counts row {numel, changed, ...} the controller can use: 0 <= changed <= max(numel, 0).
// A negative `changed` is the CUDA transition pass's bad-scale report.
TRANQ_HD inline bool trs_counts_valid(int64_t numel, int64_t changed) {
  return numel >= 0 && changed >= 0 && changed <= numel;
}

// One layer: k = changed / max(numel, 1) (QatController's transition rate), then
//   K = m*K + (1-m)*k;  additive: U = max(0, U + eta*(R - K));
//   multiplicative: s = m*s + (1-m)*s*R/(K + 1e-8), U = talr_init*s;   k_last = k.
// Returns false (nothing written) for an invalid row.
TRANQ_HD inline bool trs_layer_update(int64_t numel, int64_t changed, const TrsStep& p, double* K,
                                      double* s, double* U, double* k_last) {
  if (!trs_counts_valid(numel, changed)) return false;
  const double n = static_cast<double>(numel > 1 ? numel : int64_t{1});
  const double k = static_cast<double>(changed) / n;
  const double r = p.target;
  const double m = p.momentum;
  *K = m * *K + (1 - m) * k;
  if (p.additive) {
    const double u = *U + p.eta * (r - *K);
    *U = 0.0 < u ? u : 0.0;  // std::max(0.0, u), NaN included
  } else {
    *s = m * *s + (1 - m) * *s * r / (*K + 1e-8);
    *U = p.talr_init * *s;
  }
  *k_last = k;
  return true;
}

}  // namespace tranq::kernels
