// Rotary position embedding (SPEC section 2, rotate-half), fused with the head transpose that
// attention needs, with a hand-written backward. Private to core/.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace unipool {

// RoPE fused with the move of heads in front of positions:
// x: (B, S, heads, hd) -> (B, heads, S, hd); cos, sin: (S, hd).
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
// The same with the heads in groups of `group` (the query heads that share a kv head):
// x: (B, S, heads, hd) -> (B, heads/group, S, group, hd), the layout attention reads.
at::Tensor rope_grouped(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        int64_t group);

// cos and sin tables: (S, hd), angle = pos * rope_theta^(-2i/hd), repeated over both halves.
std::pair<at::Tensor, at::Tensor> rope_tables(int64_t seq, int64_t head_dim, double theta,
                                              at::ScalarType dtype);

}  // namespace unipool
