// Helpers shared by the kernels: element conversion, warp reductions, the shared RNG.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "unipool/random.h"

namespace unipool::kernels::detail {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);  // round to nearest even, as PyTorch rounds
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of at most 32 warps; every thread gets the total. `buf` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // buf may still be read from a previous call
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? buf[lane] : 0.0f;
  return warp_sum(v);
}

// The engine's counter-based RNG (core/include/unipool/random.h), the same header the CPU
// engine uses: random routing on the GPU chooses the experts the CPU engine chooses for the
// same (seed, token).
using unipool::hash_u64;
using unipool::Rng;
using unipool::splitmix64;

inline unsigned blocks_for(int64_t items, int per_block) {
  return unsigned((items + per_block - 1) / per_block);
}

}  // namespace unipool::kernels::detail
