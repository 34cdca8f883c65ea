#pragma once
// Counter-based random numbers: a value is a pure function of (seed, stream, counter), so a
// run can be resumed exactly from (seed, counter) and parallel workers can draw independent
// streams without sharing state.
#include <cstdint>

namespace tranq {

// SplitMix64 finaliser: a bijective 64-bit mixer.
uint64_t mix64(uint64_t x);
// Hash of several words, used to derive per-epoch / per-sample / per-layer streams.
uint64_t hash_combine(uint64_t a, uint64_t b);

// Process-wide source of seeds for layers built without an explicit one (Conv2d, Linear,
// Dropout), playing the part of PyTorch's global generator: the n-th draw since the last
// manual_seed(s) is a pure function of (s, n), so the same construction order after the same
// manual_seed gives the same weights and masks, while two default-seeded layers differ. Before
// any manual_seed the source behaves as if manual_seed(0) had been called. Thread-safe; layers
// built concurrently on several threads get distinct seeds but in an unspecified order, so
// build them on one thread where reproducibility matters. An explicit seed bypasses this source
// and does not advance it.
void manual_seed(uint64_t seed);
uint64_t next_default_seed();

class Rng {
 public:
  Rng() = default;
  explicit Rng(uint64_t seed, uint64_t stream = 0) : key_(hash_combine(seed, stream)) {}

  uint64_t next_u64() { return mix64(key_ ^ mix64(counter_++)); }
  uint32_t next_u32() { return static_cast<uint32_t>(next_u64() >> 32); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Integer in [0, n), n > 0: Lemire's multiply-shift of 32 random bits for n < 2^32, without
  // rejection, so each value has probability floor(2^32/n) or ceil(2^32/n) over 2^32: a
  // relative bias below n/2^32 (1e-6 for a million-sample shuffle), kept because every data
  // order and augmentation draws from it. n >= 2^32: 64 bits modulo n.
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller; consumes two draws).
  double normal();
  bool bernoulli(double p) { return uniform() < p; }

  // Full state, for checkpoints.
  uint64_t key() const { return key_; }
  uint64_t counter() const { return counter_; }
  void set_state(uint64_t key, uint64_t counter) { key_ = key; counter_ = counter; }

 private:
  uint64_t key_ = 0x9E3779B97F4A7C15ull;
  uint64_t counter_ = 0;
};

}  // namespace tranq
