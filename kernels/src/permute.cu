// Stable counting sort of the routed slots by expert, all on the device: a histogram per
// chunk of slots, one small scan kernel (per-expert totals, their exclusive prefix sum, each
// chunk's start within each expert) and a scatter that ranks a slot among the earlier slots
// of its chunk with the same expert. Deterministic: tokens keep their order within an expert.
#include <algorithm>

#include "common.cuh"
#include "unipool/kernels.h"

namespace unipool::kernels {
namespace {

constexpr int kChunk = 256;  // slots per block in the histogram and scatter kernels
constexpr int kScanThreads = 1024;

// block_counts: (chunks, E), row c = expert histogram of chunk c.
__global__ void chunk_histogram(const int32_t* __restrict__ expert, int64_t slots, int E,
                                int32_t* __restrict__ block_counts) {
  extern __shared__ int hist[];  // (E)
  for (int e = threadIdx.x; e < E; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  const int64_t a = int64_t(blockIdx.x) * kChunk + threadIdx.x;
  if (a < slots) atomicAdd(&hist[expert[a]], 1);
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x)
    block_counts[int64_t(blockIdx.x) * E + e] = hist[e];
}

// One block. block_counts becomes each chunk's first sorted row per expert.
__global__ void scan_counts(int chunks, int E, int32_t* __restrict__ block_counts,
                            int32_t* __restrict__ counts, int32_t* __restrict__ offsets) {
  __shared__ int buf[kScanThreads];
  __shared__ int carry;
  // 1) per expert: exclusive scan over chunks, and the expert's total.
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int run = 0;
    for (int c = 0; c < chunks; ++c) {
      const int v = block_counts[int64_t(c) * E + e];
      block_counts[int64_t(c) * E + e] = run;
      run += v;
    }
    counts[e] = run;
  }
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  // 2) exclusive scan of the totals over experts, kScanThreads at a time (Hillis-Steele).
  for (int base = 0; base < E; base += blockDim.x) {
    const int e = base + threadIdx.x;
    const int v = e < E ? counts[e] : 0;
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int off = 1; off < blockDim.x; off <<= 1) {
      const int add = threadIdx.x >= off ? buf[threadIdx.x - off] : 0;
      __syncthreads();
      buf[threadIdx.x] += add;
      __syncthreads();
    }
    if (e < E) offsets[e] = carry + buf[threadIdx.x] - v;
    __syncthreads();
    if (threadIdx.x == blockDim.x - 1) carry += buf[threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.x == 0) offsets[E] = carry;
  // 3) chunk starts become absolute rows.
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    const int o = offsets[e];
    for (int c = 0; c < chunks; ++c) block_counts[int64_t(c) * E + e] += o;
  }
}

__global__ void scatter_slots(const int32_t* __restrict__ expert, int64_t slots, int E,
                              const int32_t* __restrict__ chunk_start,
                              int32_t* __restrict__ sorted_slot, int32_t* __restrict__ slot_row) {
  __shared__ int ids[kChunk];
  const int64_t a = int64_t(blockIdx.x) * kChunk + threadIdx.x;
  ids[threadIdx.x] = a < slots ? expert[a] : -1;
  __syncthreads();
  if (a >= slots) return;
  const int e = ids[threadIdx.x];
  int rank = 0;  // earlier slots of this chunk with the same expert: keeps the sort stable
  for (int i = 0; i < int(threadIdx.x); ++i) rank += ids[i] == e;
  const int row = chunk_start[int64_t(blockIdx.x) * E + e] + rank;
  sorted_slot[row] = int32_t(a);
  slot_row[a] = row;
}

}  // namespace

size_t permute_workspace_bytes(int64_t slots, int experts) {
  const int64_t chunks = (slots + kChunk - 1) / kChunk;
  return size_t(std::max<int64_t>(chunks, 1) * experts) * sizeof(int32_t);
}

cudaError_t permute(const int32_t* expert, int64_t slots, int experts, void* workspace,
                    int32_t* counts, int32_t* offsets, int32_t* sorted_slot, int32_t* slot_row,
                    cudaStream_t stream) {
  if (slots < 0 || slots > INT32_MAX || experts < 1) return cudaErrorInvalidValue;
  const int chunks = int((slots + kChunk - 1) / kChunk);
  int32_t* block_counts = static_cast<int32_t*>(workspace);  // (chunks, E)
  if (chunks > 0) {
    chunk_histogram<<<chunks, kChunk, experts * sizeof(int), stream>>>(expert, slots, experts,
                                                                       block_counts);
  }
  scan_counts<<<1, kScanThreads, 0, stream>>>(chunks, experts, block_counts, counts, offsets);
  if (chunks > 0) {
    scatter_slots<<<chunks, kChunk, 0, stream>>>(expert, slots, experts, block_counts, sorted_slot,
                                                 slot_row);
  }
  return cudaGetLastError();
}

}  // namespace unipool::kernels
