// The one random number generator of the engine, the built-in corpus and the CUDA kernels.
//
// Counter-based and integer-only: the same (seed, counter) gives the same number on every
// compiler, CPU and GPU, so a run's randomness is a pure function of its seed and step and
// resuming needs no RNG state. We avoid std:: distributions (implementation-defined output)
// and torch generators (streams differ between LibTorch versions) wherever a result must be
// reproducible: weights, data order, random routing, the NormRouter constant, resize noise and
// the corpus text. Plain C++ with no dependencies: CUDA code includes it as it is.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define UNIPOOL_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define UNIPOOL_HOST_DEVICE inline
#endif

namespace unipool {

// SplitMix64's finaliser applied to x + golden gamma: a bijection that scrambles every bit.
UNIPOOL_HOST_DEVICE uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A number for a tuple of counters: random routing draws hash_u64(seed, layer, token), a
// batch hash_u64(seed, salt, step, row). Never repeats across distinct tuples in practice.
UNIPOOL_HOST_DEVICE uint64_t hash_u64(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t h = splitmix64(seed ^ 0x243F6A8885A308D3ull);
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ (b + 0x13198A2E03707344ull));
  return splitmix64(h ^ (c + 0xA4093822299F31D0ull));
}

// A stream of draws: the n-th is splitmix64(seed + n * stride). Stride 1 is the engine's
// stream; the golden-gamma stride is the classic SplitMix64 sequence, which the built-in
// corpus has always used (changing it would change the corpus and every run trained on it).
class Rng {
 public:
  static constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;

  UNIPOOL_HOST_DEVICE explicit Rng(uint64_t seed, uint64_t stride = 1)
      : state_(seed), stride_(stride) {}
  // The classic SplitMix64 sequence seeded with `seed`.
  static UNIPOOL_HOST_DEVICE Rng splitmix_sequence(uint64_t seed) {
    return Rng(seed, kGoldenGamma);
  }

  UNIPOOL_HOST_DEVICE uint64_t next() {
    const uint64_t v = splitmix64(state_);
    state_ += stride_;
    return v;
  }
  // Uniform in [0, 1) with 53 random bits.
  UNIPOOL_HOST_DEVICE double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n) by modulo; the bias is below 2^-40 for the n we use.
  UNIPOOL_HOST_DEVICE uint64_t below(uint64_t n) { return next() % n; }
  // Uniform integer in [0, n) by multiply-shift (Lemire) on the high 32 bits: the corpus's
  // choice, kept for its stream.
  UNIPOOL_HOST_DEVICE uint32_t below_u32(uint32_t n) {
    return static_cast<uint32_t>(((next() >> 32) * n) >> 32);
  }
  // Standard normal by Box-Muller (one value per call, the pair's twin is dropped).
  UNIPOOL_HOST_DEVICE double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
  uint64_t stride_;
};

}  // namespace unipool
