// The MoE block after routing (SPEC section 3): dropless dispatch of tokens to the pool's
// SwiGLU experts and the gate-weighted combine, forward and backward by hand. Private to core/.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace unipool {

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

// Dropless dispatch: x (T, d), global expert ids (T, k), gates (T, k) -> (T, d)
//   out_t = sum_j gates[t, j] * expert_{ids[t, j]}(x_t)
// Tokens are grouped by expert with a counting sort; no expert sees a token it was not given.
at::Tensor dispatch_experts(const at::Tensor& x, const at::Tensor& global_ids,
                            const at::Tensor& gates, const at::Tensor& w_gate,
                            const at::Tensor& w_up, const at::Tensor& w_down,
                            bool accumulate_pool_grads = false);

}  // namespace unipool
