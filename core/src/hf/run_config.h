// What a downloaded model's forward pass needs to know, read from its config.json (SPEC
// section 10): every switch of the six families we run, with the class defaults of
// transformers where a released config leaves a key out. Private to core/hf. No torch.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace unipool::hf {

// How rotary position embeddings turn positions into angles.
struct RopeSpec {
  double theta = 10000.0;
  int64_t dim = 0;           // rotated width of a head (the whole head, or MLA's rope part)
  bool interleaved = false;  // DeepSeek: pairs (2i, 2i+1); otherwise rotate-half
  // rope_scaling: "default", "linear" or "yarn" (others are refused).
  std::string type = "default";
  double factor = 1.0;
  // YaRN (transformers' modeling_rope_utils): the pre-training context and the ramp.
  double original_max_positions = 0, beta_fast = 32, beta_slow = 1;
  double mscale = 0, mscale_all_dim = 0;
  double attention_factor = 1.0;  // multiplies cos and sin
  bool truncate = true;
};

enum class ScoreKind { Softmax, Sigmoid };
enum class SelectKind { Greedy, GroupMax, GroupTop2Sum };

struct RunConfig {
  std::string model_type, family;
  int64_t vocab = 0, hidden = 0;
  int n_layers = 0;
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  double rms_eps = 1e-6;
  bool tie_embeddings = false;
  int64_t max_positions = 0;

  // Attention. Standard (GQA) or DeepSeek's multi-head latent attention.
  bool mla = false;
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_dim = 0, qk_rope_dim = 0, v_head_dim = 0;
  bool qkv_bias = false, o_bias = false;  // Qwen2-MoE: q, k, v biases; attention_bias: all four
  bool qk_norm_whole = false;             // OLMoE: RMSNorm over the whole q and k projections
  bool qk_norm_per_head = false;          // Qwen3-MoE: RMSNorm of width head_dim on each head
  double clip_qkv = 0;                    // OLMoE: clamp q, k, v to +-clip (0: off)
  int64_t sliding_window = 0;             // 0: full causal attention
  double softmax_scale = 0;               // multiplies q k^T
  RopeSpec rope;

  // Feed-forward: which layers are MoE, and the routing of those.
  std::vector<bool> moe_layer;  // (n_layers)
  int64_t dense_hidden = 0;     // intermediate_size of a dense layer
  int n_experts = 0, top_k = 0;
  int64_t expert_hidden = 0;
  ScoreKind score = ScoreKind::Softmax;
  SelectKind select = SelectKind::Greedy;
  int n_group = 1, topk_group = 1;
  bool renormalize = false;     // gates divided by their sum over the top-k
  double renorm_epsilon = 0;    // DeepSeek-V3 adds 1e-20 to that sum
  double routed_scale = 1.0;    // routed_scaling_factor
  bool score_bias = false;      // DeepSeek-V3's e_score_correction_bias (selection only)
  int64_t shared_hidden = 0;    // shared experts as one MLP of this width (0: none)
  bool shared_gate = false;     // Qwen2-MoE: times sigmoid(shared_expert_gate(x))

  std::vector<int> moe_layers() const;
  // "block_sparse_moe" (Mixtral) or "mlp": where a layer's router and experts are named.
  const char* moe_prefix() const { return model_type == "mixtral" ? "block_sparse_moe" : "mlp"; }
};

// The families run (config.json's model_type).
const std::vector<std::string>& runnable_model_types();

// Reads config.json. Throws MoeLayoutError naming the key or value for a family, switch or
// value we do not run (never approximated), and for a config that contradicts itself.
RunConfig read_run_config(const nlohmann::json& config);

}  // namespace unipool::hf
