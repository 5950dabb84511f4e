// A tiled GEMM over the experts of a pool, one launch for all of them. Correctness first:
// fp32 FMA on shared-memory tiles (bf16 operands are widened on load), no tensor cores yet.
//
// Operands are addressed through strides, so one kernel serves every layout the SwiGLU
// forward and backward need:  A(i, k) = a[i * a_mn + k * a_k],
// B(k, j) = b[e * b_expert + k * b_k + j * b_mn],  C(i, j) = c[e * c_expert + i * c_m + j].
// Two groupings:
//  - Rows: C's rows are the sorted rows of the experts (i absolute, in [offsets[e],
//    offsets[e+1])), k in [0, K): activations times an expert's weight.
//  - Reduce: k runs over expert e's rows, i in [0, M), j in [0, N): the weight gradient of
//    expert e, summed over its rows.
#pragma once

#include "common.cuh"

namespace unipool::kernels::detail {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kGemmThreads = 256;

struct GemmProblem {
  const void* a = nullptr;
  int64_t a_mn = 0, a_k = 0;
  const void* b = nullptr;
  int64_t b_mn = 0, b_k = 0, b_expert = 0;
  void* c = nullptr;
  int64_t c_m = 0, c_expert = 0;
  const int32_t* offsets = nullptr;  // (E + 1), on the device
  int experts = 0;
  int64_t rows = 0;         // A: total sorted rows (Rows grouping: bounds the tile count)
  int m = 0, n = 0, k = 0;  // Rows: n, k used; Reduce: m, n used
  bool accumulate = false;  // C += A B instead of C = A B
};

// Finds the expert and first row of row tile `tile` (tiles never straddle two experts).
__device__ inline bool find_row_tile(const GemmProblem& p, int tile, int* expert, int64_t* r0,
                                     int64_t* r1) {
  int before = 0;
  for (int e = 0; e < p.experts; ++e) {
    const int o0 = p.offsets[e], o1 = p.offsets[e + 1];
    const int tiles = (o1 - o0 + kTileM - 1) / kTileM;
    if (tile < before + tiles) {
      *expert = e;
      *r0 = o0 + int64_t(tile - before) * kTileM;
      *r1 = o1;
      return true;
    }
    before += tiles;
  }
  return false;
}

template <typename TIn, typename TOut, bool kReduce>
__global__ void __launch_bounds__(kGemmThreads) grouped_gemm_kernel(GemmProblem p) {
  __shared__ float As[kTileK][kTileM + 4];  // padded against bank conflicts
  __shared__ float Bs[kTileK][kTileN + 4];
  __shared__ int s_expert;
  __shared__ long long s_r0, s_r1;
  const int tid = threadIdx.x;
  int64_t i_begin, i_end, k_begin, k_end;
  int e;
  if (kReduce) {
    e = blockIdx.z;
    i_begin = int64_t(blockIdx.y) * kTileM;
    i_end = p.m;
    k_begin = p.offsets[e];
    k_end = p.offsets[e + 1];
  } else {
    if (tid == 0) {
      int ex = -1;
      int64_t r0 = 0, r1 = 0;
      if (!find_row_tile(p, blockIdx.y, &ex, &r0, &r1)) ex = -1;
      s_expert = ex;
      s_r0 = r0;
      s_r1 = r1;
    }
    __syncthreads();
    e = s_expert;
    if (e < 0) return;  // more tiles were launched than the counts need
    i_begin = s_r0;
    i_end = s_r1;
    k_begin = 0;
    k_end = p.k;
  }
  const int64_t j_begin = int64_t(blockIdx.x) * kTileN, j_end = p.n;
  if (kReduce && i_begin >= i_end) return;
  const TIn* a = static_cast<const TIn*>(p.a);
  const TIn* b = static_cast<const TIn*>(p.b) + int64_t(e) * p.b_expert;
  const int tx = tid % 16, ty = tid / 16;  // thread owns rows ty + 16 r, columns tx + 16 c
  float acc[4][4] = {};
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kTileK) {
    for (int l = tid; l < kTileK * kTileM; l += kGemmThreads) {
      // Walk the operand's contiguous dimension with consecutive threads.
      const int ii = p.a_k == 1 ? l / kTileK : l % kTileM;
      const int kk = p.a_k == 1 ? l % kTileK : l / kTileM;
      const int64_t i = i_begin + ii, kx = k0 + kk;
      As[kk][ii] = (i < i_end && kx < k_end) ? to_float(a[i * p.a_mn + kx * p.a_k]) : 0.0f;
    }
    for (int l = tid; l < kTileK * kTileN; l += kGemmThreads) {
      const int jj = p.b_k == 1 ? l / kTileK : l % kTileN;
      const int kk = p.b_k == 1 ? l % kTileK : l / kTileN;
      const int64_t j = j_begin + jj, kx = k0 + kk;
      Bs[kk][jj] = (j < j_end && kx < k_end) ? to_float(b[kx * p.b_k + j * p.b_mn]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) av[r] = As[kk][ty + 16 * r];
#pragma unroll
      for (int c = 0; c < 4; ++c) bv[c] = Bs[kk][tx + 16 * c];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
    }
    __syncthreads();
  }
  TOut* cbase = static_cast<TOut*>(p.c) + (kReduce ? int64_t(e) * p.c_expert : 0);
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int64_t i = i_begin + ty + 16 * r;
    if (i >= i_end || (!kReduce && i >= i_begin + kTileM)) continue;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int64_t j = j_begin + tx + 16 * c;
      if (j >= j_end) continue;
      TOut* out = cbase + i * p.c_m + j;
      const float v = p.accumulate ? to_float(*out) + acc[r][c] : acc[r][c];
      *out = from_float<TOut>(v);
    }
  }
}

// Launches C (+)= A B for the grouping; grid sizes need no host copy of the counts.
template <typename TIn, typename TOut, bool kReduce>
cudaError_t grouped_gemm(const GemmProblem& p, cudaStream_t stream) {
  if (kReduce) {
    const dim3 grid(blocks_for(p.n, kTileN), blocks_for(p.m, kTileM), unsigned(p.experts));
    if (p.m > 0 && p.n > 0 && p.experts > 0)
      grouped_gemm_kernel<TIn, TOut, true><<<grid, kGemmThreads, 0, stream>>>(p);
  } else {
    // At most rows / kTileM + experts tiles: each expert wastes at most one partial tile.
    const int64_t tiles = (p.rows + kTileM - 1) / kTileM + p.experts;
    const dim3 grid(blocks_for(p.n, kTileN), unsigned(tiles));
    if (p.rows > 0 && p.n > 0)
      grouped_gemm_kernel<TIn, TOut, false><<<grid, kGemmThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace unipool::kernels::detail
