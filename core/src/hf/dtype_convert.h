// Stored floating-point elements to float32: what the checkpoints people download use (BF16,
// F16, FP8 E4M3/E5M2) besides F32 and F64. Private to core/hf.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "unipool/safetensors.h"

namespace unipool::hf {

inline float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = std::ldexp(float(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf, NaN
  return bits_to_float(sign | (uint32_t(exp - 15 + 127) << 23) | (mant << 13));
}

// E4M3 "fn" (what DeepSeek-V3 and PyTorch's float8_e4m3fn store): bias 7, no infinities,
// S.1111.111 is NaN.
inline float e4m3_to_float(uint8_t b) {
  const bool negative = b & 0x80;
  const int exp = (b >> 3) & 0xf, mant = b & 0x7;
  float v;
  if (exp == 0xf && mant == 0x7)
    v = NAN;
  else if (exp == 0)
    v = std::ldexp(float(mant), -9);  // subnormal: mant/8 * 2^-6
  else
    v = std::ldexp(1.0f + float(mant) / 8.0f, exp - 7);
  return negative ? -v : v;
}

// E5M2: the top byte of an IEEE half.
inline float e5m2_to_float(uint8_t b) { return half_to_float(uint16_t(b) << 8); }

// The "fnuz" variants (AMD): exponent bias one more, no negative zero, 0x80 is the only NaN.
inline float fnuz_to_float(uint8_t b, int mant_bits, int bias) {
  if (b == 0x80) return NAN;
  const bool negative = b & 0x80;
  const int exp = (b & 0x7f) >> mant_bits, mant = b & ((1 << mant_bits) - 1);
  const float m = float(mant) / float(1 << mant_bits);
  const float v = exp == 0 ? std::ldexp(m, 1 - bias) : std::ldexp(1.0f + m, exp - bias);
  return negative ? -v : v;
}

inline bool is_float_dtype(DType d) {
  return d == DType::F32 || d == DType::F64 || d == DType::BF16 || d == DType::F16 ||
         d == DType::F8_E4M3 || d == DType::F8_E5M2 || d == DType::F8_E4M3FNUZ ||
         d == DType::F8_E5M2FNUZ;
}

// n elements of dtype `d` (little-endian, unaligned) from `src` into `out`.
inline void to_float(DType d, const uint8_t* src, int64_t n, float* out) {
  switch (d) {
    case DType::F32:
      std::memcpy(out, src, size_t(n) * 4);
      return;
    case DType::F64:
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, src + 8 * i, 8);
        out[i] = float(v);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        out[i] = bits_to_float(uint32_t(v) << 16);
      }
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        out[i] = half_to_float(v);
      }
      return;
    case DType::F8_E4M3:
      for (int64_t i = 0; i < n; ++i) out[i] = e4m3_to_float(src[i]);
      return;
    case DType::F8_E5M2:
      for (int64_t i = 0; i < n; ++i) out[i] = e5m2_to_float(src[i]);
      return;
    case DType::F8_E4M3FNUZ:
      for (int64_t i = 0; i < n; ++i) out[i] = fnuz_to_float(src[i], 3, 8);
      return;
    case DType::F8_E5M2FNUZ:
      for (int64_t i = 0; i < n; ++i) out[i] = fnuz_to_float(src[i], 2, 16);
      return;
    default:
      for (int64_t i = 0; i < n; ++i) out[i] = NAN;  // callers check is_float_dtype first
  }
}

}  // namespace unipool::hf
