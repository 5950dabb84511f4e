// The parameter names of SPEC section 6, defined once: the checkpoint, the forward pass, the
// optimizer, pool resizing and weight inspection all name tensors through these.
#pragma once

#include <string>

namespace unipool::param_names {

inline const std::string kEmbed = "embed.weight";
inline const std::string kFinalNorm = "final_norm.weight";
inline const std::string kLmHead = "lm_head.weight";
// The stacked expert pools: (N, h, d), (N, h, d), (N, d, h).
inline const std::string kPoolGate = "pool.w_gate";
inline const std::string kPoolUp = "pool.w_up";
inline const std::string kPoolDown = "pool.w_down";

// "layers.<l>.<leaf>"
inline std::string layer(int l, const char* leaf) {
  return "layers." + std::to_string(l) + "." + leaf;
}
inline std::string attn_norm(int l) { return layer(l, "attn_norm.weight"); }
inline std::string q_proj(int l) { return layer(l, "attn.q_proj.weight"); }
inline std::string k_proj(int l) { return layer(l, "attn.k_proj.weight"); }
inline std::string v_proj(int l) { return layer(l, "attn.v_proj.weight"); }
inline std::string o_proj(int l) { return layer(l, "attn.o_proj.weight"); }
inline std::string ffn_norm(int l) { return layer(l, "ffn_norm.weight"); }
inline std::string router_weight(int l) { return layer(l, "router.weight"); }  // (Mg, d)
inline std::string router_scale(int l) { return layer(l, "router.scale"); }    // (1), NormRouter

inline bool ends_with(const std::string& name, const char* suffix) {
  const std::string s(suffix);
  return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
}
// The shared expert pool's three tensors.
inline bool is_pool(const std::string& name) {
  return name == kPoolGate || name == kPoolUp || name == kPoolDown;
}

// RMSNorm weights and NormRouter scales: initialised to 1, never weight-decayed.
inline bool is_norm_or_scale(const std::string& name) {
  return ends_with(name, "norm.weight") || ends_with(name, "router.scale");
}
// A layer's router projection (Mg, d): its own init and weight decay when a run asks
// (TrainOptions::router_init_std, router_weight_decay).
inline bool is_router_weight(const std::string& name) { return ends_with(name, "router.weight"); }
// The residual outputs, initialised smaller (GPT-2 style).
inline bool is_residual_output(const std::string& name) {
  return ends_with(name, "attn.o_proj.weight") || name == kPoolDown;
}

// AdamW's moments in the training-state file: "exp_avg.<name>", "exp_avg_sq.<name>".
inline const std::string kExpAvgPrefix = "exp_avg.";
inline const std::string kExpAvgSqPrefix = "exp_avg_sq.";

}  // namespace unipool::param_names
