// LibTorch-op references of the GPU MoE kernels (kernels/include/unipool/kernels.h), one per
// kernel, written with plain ops (sort, gather, index_select, matmul) so that autograd gives
// their backward passes. They run on any device and dtype: the GPU tests compare each kernel
// with its reference on the GPU, and tst_moe_reference checks the references against the CPU
// engine's own routing and experts. Depends on LibTorch and unipool/random.h only.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace unipool::moe_ref {

struct RouteSpec {
  int top_k = 1;
  bool norm = true;  // NormRouter; false: softmax
  double router_c = 1.0;
  bool renormalize = false;
  bool random = false;
  uint64_t seed = 0;  // the layer's seed: token t draws from hash_u64(seed, t)
};

struct Route {
  at::Tensor scores;  // (T, Mg), differentiable
  at::Tensor top;     // (T, k) int64: learned top-k, largest first, ties to the lower index
  at::Tensor local;   // (T, k) int64: experts used (== top unless random)
  at::Tensor gates;   // (T, k), differentiable in logits and scale
};

// SPEC section 3 from the router logits z: (T, Mg); scale: (1), used when spec.norm.
Route route(const at::Tensor& logits, const at::Tensor& scale, const RouteSpec& spec);

// The CPU engine's random routing rule (random_experts in core/src/router.cpp):
// (T, k) int64 on the CPU, k distinct experts per token by a partial Fisher-Yates.
at::Tensor random_choice(int64_t tokens, int experts, int k, uint64_t seed);

struct Permutation {
  at::Tensor counts;       // (E) int64
  at::Tensor offsets;      // (E + 1) int64, exclusive prefix sum of counts
  at::Tensor sorted_slot;  // (A) int64: slot of each expert-sorted row, stable
  at::Tensor slot_row;     // (A) int64: sorted row of each slot
};

// expert: (A) integer local expert of each slot (slot a = t * k + j).
Permutation permute(const at::Tensor& expert, int64_t experts);

// x: (T, d) -> (A, d): row r is x[sorted_slot[r] / k].
at::Tensor gather_rows(const at::Tensor& x, const at::Tensor& sorted_slot, int64_t k);

// SwiGLU of each expert over its rows of x_sorted: (A, d); counts (E) on any device;
// w_gate, w_up: (E, h, d), w_down: (E, d, h) -> (A, d).
at::Tensor grouped_swiglu(const at::Tensor& x_sorted, const at::Tensor& counts,
                          const at::Tensor& w_gate, const at::Tensor& w_up,
                          const at::Tensor& w_down);

// y_sorted: (A, d), gates: (T, k), slot_row: (A) -> (T, d):
// out[t] = sum_j gates[t, j] * y_sorted[slot_row[t * k + j]].
at::Tensor combine(const at::Tensor& y_sorted, const at::Tensor& gates, const at::Tensor& slot_row);

// The whole block after routing: permute, gather, experts, combine. x: (T, d);
// local: (T, k) local experts; gates: (T, k); weights of the layer's pool -> (T, d).
at::Tensor moe_block(const at::Tensor& x, const at::Tensor& local, const at::Tensor& gates,
                     const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down);

}  // namespace unipool::moe_ref
