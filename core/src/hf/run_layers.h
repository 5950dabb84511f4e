// The pieces every downloaded family's forward pass is built from (SPEC section 10): RMSNorm,
// rotary embeddings (rotate-half, DeepSeek's interleaved pairs, YaRN), causal attention with
// GQA, sliding windows and DeepSeek's multi-head latent attention, and SwiGLU MLPs. Each takes
// its switches from RunConfig and its weights from RunWeights. float32 throughout. Private
// to core/hf.
#pragma once

#include <torch/torch.h>

#include <string>

#include "hf/run_config.h"
#include "hf/run_weights.h"

namespace unipool::hf {

// x / sqrt(mean(x^2) + eps) * w over the last dimension.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

// cos and sin for positions 0..S-1, (S, rope.dim), already times YaRN's attention factor.
struct RopeTables {
  at::Tensor cos, sin;
};
RopeTables rope_tables(const RopeSpec& rope, int64_t seq);
// x: (B, heads, S, rope.dim) -> rotated, same shape.
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& t, bool interleaved);

// Self-attention of layer `layer` (its input already normed): x (B, S, hidden) -> (B, S, hidden).
at::Tensor attention(const RunConfig& c, const RunWeights& w, int layer, const at::Tensor& x,
                     const RopeTables& rope);

// down(silu(gate(x)) * up(x)) with the MLP named `prefix` + {gate,up,down}_proj.weight (Mixtral
// experts: w1, w3, w2): x (T, hidden) -> (T, hidden).
struct MlpNames {
  std::string gate, up, down;
};
MlpNames mlp_names(const std::string& prefix, bool mixtral_expert);
// Buffers the three converted matrices can be written into, reused across a layer's experts.
struct MlpBuffers {
  at::Tensor gate, up, down;
};
at::Tensor swiglu(const RunWeights& w, const MlpNames& names, int64_t hidden, int64_t inner,
                  const at::Tensor& x, MlpBuffers* buffers = nullptr);

// "model.layers.<l>."
std::string layer_prefix(int layer);

}  // namespace unipool::hf
