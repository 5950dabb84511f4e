// Small deterministic random number tools. We avoid std:: distributions (their output is
// implementation-defined) and torch generators (their streams differ between LibTorch
// versions) wherever the result must be reproducible: data sampling, random routing, the
// NormRouter constant and resize noise.
#pragma once

#include <cmath>
#include <cstdint>

namespace unipool {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Counter-based: the same (seed, a, b, c) always gives the same number, so a training run's
// randomness is a pure function of its seed and step, and resuming needs no RNG state.
inline uint64_t hash_u64(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t h = splitmix64(seed ^ 0x243F6A8885A308D3ull);
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ (b + 0x13198A2E03707344ull));
  return splitmix64(h ^ (c + 0xA4093822299F31D0ull));
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return splitmix64(state_++); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n); the modulo bias is below 2^-40 for the n we use.
  uint64_t below(uint64_t n) { return next() % n; }
  // Standard normal by Box-Muller (one value per call, the pair's twin is dropped).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace unipool
