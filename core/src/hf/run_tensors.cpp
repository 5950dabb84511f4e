// Every tensor a downloaded model's forward pass will read, with the shape config.json
// implies, checked when the model is opened: a missing, misshapen or unreadable tensor is an
// error naming it before any work starts (llama.cpp's rule), not half-way through a pass.
#include "hf/run_tensors.h"

#include "hf/run_layers.h"

namespace unipool::hf {

namespace {

void check_mlp(const RunWeights& w, const MlpNames& n, int64_t hidden, int64_t inner) {
  w.check(n.gate, {inner, hidden});
  w.check(n.up, {inner, hidden});
  w.check(n.down, {hidden, inner});
}

void check_linear(const RunWeights& w, const std::string& name, int64_t out, int64_t in,
                  bool bias) {
  w.check(name + ".weight", {out, in});
  if (bias) w.check(name + ".bias", {out});
}

void check_attention(const RunConfig& c, const RunWeights& w, const std::string& p) {
  const int64_t H = c.n_heads, D = c.hidden;
  if (c.mla) {
    const int64_t qk = c.qk_nope_dim + c.qk_rope_dim;
    if (c.q_lora_rank > 0) {
      check_linear(w, p + "q_a_proj", c.q_lora_rank, D, c.qkv_bias);
      w.check(p + "q_a_layernorm.weight", {c.q_lora_rank});
      check_linear(w, p + "q_b_proj", H * qk, c.q_lora_rank, false);
    } else {
      check_linear(w, p + "q_proj", H * qk, D, false);
    }
    check_linear(w, p + "kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_dim, D, c.qkv_bias);
    w.check(p + "kv_a_layernorm.weight", {c.kv_lora_rank});
    check_linear(w, p + "kv_b_proj", H * (c.qk_nope_dim + c.v_head_dim), c.kv_lora_rank, false);
    check_linear(w, p + "o_proj", D, H * c.v_head_dim, c.o_bias);
    return;
  }
  const int64_t q = H * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  check_linear(w, p + "q_proj", q, D, c.qkv_bias);
  check_linear(w, p + "k_proj", kv, D, c.qkv_bias);
  check_linear(w, p + "v_proj", kv, D, c.qkv_bias);
  check_linear(w, p + "o_proj", D, q, c.o_bias);
  if (c.qk_norm_whole) {
    w.check(p + "q_norm.weight", {q});
    w.check(p + "k_norm.weight", {kv});
  }
  if (c.qk_norm_per_head) {
    w.check(p + "q_norm.weight", {c.head_dim});
    w.check(p + "k_norm.weight", {c.head_dim});
  }
}

void check_feed_forward(const RunConfig& c, const RunWeights& w, int l) {
  const std::string p = layer_prefix(l) + "mlp.";
  if (!c.moe_layer[size_t(l)]) {
    if (w.has(p + "gate.weight") || w.has(layer_prefix(l) + "block_sparse_moe.gate.weight"))
      throw MoeLayoutError("config.json makes layer " + std::to_string(l) +
                           " a dense MLP, but the checkpoint has a router there");
    check_mlp(w, mlp_names(p, false), c.hidden, c.dense_hidden);
    return;
  }
  const std::string moe = layer_prefix(l) + c.moe_prefix() + ".";
  if (!w.has(moe + "gate.weight") && w.has(p + "gate_proj.weight"))
    throw MoeLayoutError("config.json makes layer " + std::to_string(l) +
                         " a MoE layer, but the checkpoint has a dense MLP there");
  w.check(moe + "gate.weight", {c.n_experts, c.hidden});
  if (c.score_bias) w.check(moe + "gate.e_score_correction_bias", {c.n_experts});
  if (w.has(moe + "experts.gate_up_proj") || w.has(moe + "experts.gate_up_proj_blocks"))
    throw MoeLayoutError("layer " + std::to_string(l) +
                         " stores its experts fused (experts.gate_up_proj): only one tensor "
                         "per expert matrix is run");
  if (w.has(moe + "experts." + std::to_string(c.n_experts) + ".down_proj.weight") ||
      w.has(moe + "experts." + std::to_string(c.n_experts) + ".w2.weight"))
    throw MoeLayoutError("layer " + std::to_string(l) + " has more than the " +
                         std::to_string(c.n_experts) + " experts config.json names");
  for (int e = 0; e < c.n_experts; ++e)
    check_mlp(w, mlp_names(moe + "experts." + std::to_string(e) + ".", c.model_type == "mixtral"),
              c.hidden, c.expert_hidden);
  if (c.shared_hidden > 0) {
    const bool qwen = c.model_type == "qwen2_moe";
    check_mlp(w, mlp_names(p + (qwen ? "shared_expert." : "shared_experts."), false), c.hidden,
              c.shared_hidden);
    if (c.shared_gate) w.check(p + "shared_expert_gate.weight", {1, c.hidden});
  }
}

}  // namespace

void check_tensors(const RunConfig& c, const RunWeights& w) {
  w.check("model.embed_tokens.weight", {c.vocab, c.hidden});
  if (!c.tie_embeddings) w.check("lm_head.weight", {c.vocab, c.hidden});
  w.check("model.norm.weight", {c.hidden});
  for (int l = 0; l < c.n_layers; ++l) {
    w.check(layer_prefix(l) + "input_layernorm.weight", {c.hidden});
    w.check(layer_prefix(l) + "post_attention_layernorm.weight", {c.hidden});
    check_attention(c, w, layer_prefix(l) + "self_attn.");
    check_feed_forward(c, w, l);
  }
  if (w.has(layer_prefix(c.n_layers) + "input_layernorm.weight") && c.model_type != "deepseek_v3")
    throw MoeLayoutError("the checkpoint has a layer " + std::to_string(c.n_layers) +
                         ", but config.json says num_hidden_layers " +
                         std::to_string(c.n_layers));
}

}  // namespace unipool::hf
