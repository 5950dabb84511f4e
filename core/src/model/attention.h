// Causal grouped-query attention (SPEC section 2) with a hand-written backward that skips the
// masked blocks. Private to core/.
#pragma once

#include <torch/torch.h>

namespace unipool {

// Causal grouped-query attention core. q: (B, H, S, hd), k, v: (B, KV, S, hd);
// query head j reads kv head j / (H / KV). Returns (B, H, S, hd).
at::Tensor causal_gqa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// The same on the grouped query layout of rope_grouped: q: (B, KV, S, rep, hd) with
// rep = H / KV, k, v: (B, KV, S, hd). Returns (B, KV, S, rep, hd).
at::Tensor causal_gqa_attention_grouped(const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v);

}  // namespace unipool
