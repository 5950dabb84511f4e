// Figures for benchmarks: model FLOPs, the machine's GEMM rate and memory use.
#pragma once

#include "unipool/config.h"

namespace unipool {

// Matrix-multiply FLOPs of one forward pass per token at sequence length `seq`: projections,
// router, top_k experts, lm_head, and attention scores and values over the full S x S square
// (the usual convention; the engine itself skips most of the masked half, so its MFU counts
// somewhat more work than it does).
double forward_flops_per_token(const ModelConfig& config, int seq);
// Training = forward + backward = 3 x forward, the usual MFU convention.
inline double training_flops_per_token(const ModelConfig& config, int seq) {
  return 3.0 * forward_flops_per_token(config, seq);
}
// Sustained float32 GEMM rate of LibTorch's BLAS on this machine, in GFLOP/s (n x n x n).
double measure_gemm_gflops(int n = 512, double seconds = 1.0);
// The same, summed over `threads` threads each running its own (m, k) x (k, n) GEMMs on one
// BLAS thread: how far this machine lets GEMMs of a model's shapes scale with cores (memory
// and cache bandwidth, shared clocks), the ceiling for any split of that work.
double measure_parallel_gemm_gflops(int m, int k, int n, int threads, double seconds = 0.5);
// Peak resident memory of this process so far, in MiB (Linux VmHWM; 0 where unknown).
double peak_rss_mib();

}  // namespace unipool
