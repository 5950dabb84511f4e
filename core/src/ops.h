// Fused CPU operators with hand-written backward passes, used where a chain of autograd ops
// would spend its time in elementwise passes and temporaries (see README, Performance).
// Every operator here has a plain-LibTorch reference in tests/ and a finite-difference check.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace unipool {

// RMSNorm over the last dimension: x / sqrt(mean(x^2) + eps) * weight.
// x: (..., d), weight: (d) -> (..., d)
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// SwiGLU experts over rows already grouped by expert: rows [o_e, o_e + counts[e]) of
// x_sorted go to global expert e, where o_e is the sum of the earlier counts.
// x_sorted: (A, d); counts: N entries summing to A; w_gate, w_up: (N, h, d); w_down: (N, d, h)
// returns (A, d): w_down[e] @ (silu(w_gate[e] @ x) * (w_up[e] @ x)) for each row.
// The experts alone, for the tests and as a building block; the model calls moe_experts.
// The pool tensors are shared by all layers of a group. By default their gradients flow back
// through autograd like any other input; with accumulate_into_grad (the training step), the
// backward adds them straight into the leaf tensors' .grad and autograd sees none.
at::Tensor pool_experts(const at::Tensor& x_sorted, const std::vector<int64_t>& counts,
                        const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down,
                        bool accumulate_into_grad = false);

// The whole MoE block after routing: gathers each token's row for each of its top_k experts,
// runs the experts, and sums the gate-weighted outputs back per token.
// x: (T, d); token: (A = T * top_k) int64, the token of each expert-sorted row;
// gates_sorted: (A) the gate of each sorted row; counts as in pool_experts -> (T, d).
at::Tensor moe_experts(const at::Tensor& x, const at::Tensor& gates_sorted, const at::Tensor& token,
                       const std::vector<int64_t>& counts, int64_t top_k, const at::Tensor& w_gate,
                       const at::Tensor& w_up, const at::Tensor& w_down,
                       bool accumulate_into_grad = false);

// RoPE, rotate-half convention (SPEC section 2), fused with the move of heads in front of
// positions: x: (B, S, heads, hd) -> (B, heads, S, hd); cos, sin: (S, hd).
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
// The same with the heads in groups of `group` (the query heads that share a kv head):
// x: (B, S, heads, hd) -> (B, heads/group, S, group, hd), the layout attention reads.
at::Tensor rope_grouped(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        int64_t group);

// cos and sin tables: (S, hd), angle = pos * rope_theta^(-2i/hd), repeated over both halves.
std::pair<at::Tensor, at::Tensor> rope_tables(int64_t seq, int64_t head_dim, double theta,
                                              at::ScalarType dtype);

// Causal grouped-query attention core. q: (B, H, S, hd), k, v: (B, KV, S, hd);
// query head j reads kv head j / (H / KV). Returns (B, H, S, hd).
at::Tensor causal_gqa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// The same on the grouped query layout of rope_grouped: q: (B, KV, S, rep, hd) with
// rep = H / KV, k, v: (B, KV, S, hd). Returns (B, KV, S, rep, hd).
at::Tensor causal_gqa_attention_grouped(const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v);

}  // namespace unipool
