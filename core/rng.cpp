#include "core/rng.h"

#include <cmath>
#include <mutex>

namespace tranq {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_combine(uint64_t a, uint64_t b) { return mix64(mix64(a) ^ (b + 0x632BE59BD9B4E019ull)); }

namespace {

// (seed, draws) change together under one lock, so a draw never pairs a new seed with an old
// count.
struct DefaultSeedSource {
  std::mutex mutex;
  uint64_t seed = 0;
  uint64_t draws = 0;
};

DefaultSeedSource& default_seed_source() {
  static DefaultSeedSource s;
  return s;
}

}  // namespace

void manual_seed(uint64_t seed) {
  DefaultSeedSource& s = default_seed_source();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.seed = seed;
  s.draws = 0;
}

uint64_t next_default_seed() {
  DefaultSeedSource& s = default_seed_source();
  uint64_t seed, n;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    seed = s.seed;
    n = s.draws++;
  }
  // Salted, so these are not the keys of the Rng(s, n) streams a program may also draw from s.
  return hash_combine(hash_combine(seed, 0x6C617965725F7364ull), n);
}

uint64_t Rng::below(uint64_t n) {
  if (n <= 0xFFFFFFFFull) return (static_cast<uint64_t>(next_u32()) * n) >> 32;
  return next_u64() % n;
}

double Rng::normal() {
  double u1 = uniform();
  double u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace tranq
