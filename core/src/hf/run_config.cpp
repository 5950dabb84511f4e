// config.json -> RunConfig. Defaults are those of transformers' configuration_<family>.py
// classes; the sizes that define a model (hidden_size, layers, heads, experts, top-k) must be
// in the file: a missing one is an error, never a guess.
#include "hf/run_config.h"

#include <cmath>
#include <set>

#include "unipool/moe_checkpoint.h"

namespace unipool::hf {

namespace {

using nlohmann::json;

[[noreturn]] void refuse(const std::string& what) { throw MoeLayoutError("config.json: " + what); }

bool present(const json& c, const char* key) { return c.contains(key) && !c[key].is_null(); }

int64_t required_int(const json& c, const char* key) {
  if (!present(c, key)) refuse(std::string("no \"") + key + "\"");
  if (!c[key].is_number_integer() || c[key].get<int64_t>() <= 0)
    refuse(std::string("\"") + key + "\" is not a positive whole number");
  return c[key].get<int64_t>();
}

int64_t int_or(const json& c, const char* key, int64_t fallback) {
  if (!present(c, key)) return fallback;
  if (!c[key].is_number_integer() || c[key].get<int64_t>() < 0)
    refuse(std::string("\"") + key + "\" is not a whole number >= 0");
  return c[key].get<int64_t>();
}

double number_or(const json& c, const char* key, double fallback) {
  if (!present(c, key)) return fallback;
  if (!c[key].is_number() || !std::isfinite(c[key].get<double>()))
    refuse(std::string("\"") + key + "\" is not a number");
  return c[key].get<double>();
}

bool bool_or(const json& c, const char* key, bool fallback) {
  if (!present(c, key)) return fallback;
  if (!c[key].is_boolean()) refuse(std::string("\"") + key + "\" is not true or false");
  return c[key].get<bool>();
}

std::string string_or(const json& c, const char* key, const std::string& fallback) {
  if (!present(c, key)) return fallback;
  if (!c[key].is_string()) refuse(std::string("\"") + key + "\" is not a string");
  return c[key].get<std::string>();
}

// YaRN's magnitude correction (transformers: get_mscale / yarn_get_mscale).
double yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

void read_rope(const json& c, RunConfig& r) {
  r.rope.theta = number_or(c, "rope_theta", r.rope.theta);
  if (number_or(c, "partial_rotary_factor", 1.0) != 1.0)
    refuse("partial_rotary_factor other than 1 is not supported");
  if (!present(c, "rope_scaling")) return;
  const json& s = c["rope_scaling"];
  if (!s.is_object()) refuse("\"rope_scaling\" is not an object");
  std::string type = string_or(s, "rope_type", string_or(s, "type", "default"));
  r.rope.type = type;
  if (type == "default") return;
  if (type != "linear" && type != "yarn")
    refuse("rope_scaling type \"" + type + "\" is not supported (default, linear and yarn are)");
  r.rope.factor = number_or(s, "factor", 0);
  if (r.rope.factor <= 0) refuse("rope_scaling has no positive \"factor\"");
  if (type == "linear") return;
  // transformers' _compute_yarn_parameters: with original_max_position_embeddings given, the
  // factor used for frequencies and attention scale is the ratio of the two context lengths.
  double factor = r.rope.factor;
  r.rope.original_max_positions = double(r.max_positions);
  if (present(s, "original_max_position_embeddings")) {
    r.rope.original_max_positions = number_or(s, "original_max_position_embeddings", 0);
    if (r.rope.original_max_positions <= 0 || r.max_positions <= 0)
      refuse("YaRN needs positive max_position_embeddings and original_max_position_embeddings");
    factor = double(r.max_positions) / r.rope.original_max_positions;
  }
  r.rope.factor = factor;
  r.rope.beta_fast = number_or(s, "beta_fast", 32);
  r.rope.beta_slow = number_or(s, "beta_slow", 1);
  r.rope.mscale = number_or(s, "mscale", 0);
  r.rope.mscale_all_dim = number_or(s, "mscale_all_dim", 0);
  r.rope.truncate = bool_or(s, "truncate", true);
  if (present(s, "attention_factor")) {
    r.rope.attention_factor = number_or(s, "attention_factor", 1);
  } else if (r.rope.mscale != 0 && r.rope.mscale_all_dim != 0) {
    r.rope.attention_factor =
        yarn_mscale(factor, r.rope.mscale) / yarn_mscale(factor, r.rope.mscale_all_dim);
  } else {
    r.rope.attention_factor = yarn_mscale(factor, 1.0);
  }
}

void read_attention(const json& c, RunConfig& r) {
  r.n_heads = required_int(c, "num_attention_heads");
  r.n_kv_heads = int_or(c, "num_key_value_heads", r.n_heads);
  if (r.n_kv_heads <= 0 || r.n_heads % r.n_kv_heads != 0)
    refuse("num_attention_heads " + std::to_string(r.n_heads) +
           " is not a multiple of num_key_value_heads " + std::to_string(r.n_kv_heads));
  r.head_dim = int_or(c, "head_dim", 0);
  if (r.head_dim == 0) r.head_dim = r.hidden / r.n_heads;
  r.rope.dim = r.head_dim;
  const std::string& t = r.model_type;
  if (t == "mixtral") {
    r.sliding_window = int_or(c, "sliding_window", 0);
  } else if (t == "olmoe") {
    r.qk_norm_whole = true;
    r.clip_qkv = number_or(c, "clip_qkv", 0);
    r.qkv_bias = r.o_bias = bool_or(c, "attention_bias", false);
  } else if (t == "qwen2_moe" || t == "qwen3_moe") {
    if (bool_or(c, "use_sliding_window", false))
      refuse("use_sliding_window true is not supported for " + t);
    if (t == "qwen2_moe") {
      r.qkv_bias = bool_or(c, "qkv_bias", true);
    } else {
      r.qk_norm_per_head = true;
      r.qkv_bias = r.o_bias = bool_or(c, "attention_bias", false);
    }
  } else {  // deepseek_v2, deepseek_v3: multi-head latent attention
    r.mla = true;
    r.q_lora_rank = int_or(c, "q_lora_rank", 0);
    r.kv_lora_rank = required_int(c, "kv_lora_rank");
    r.qk_nope_dim = required_int(c, "qk_nope_head_dim");
    r.qk_rope_dim = required_int(c, "qk_rope_head_dim");
    r.v_head_dim = required_int(c, "v_head_dim");
    r.qkv_bias = r.o_bias = bool_or(c, "attention_bias", false);
    r.rope.dim = r.qk_rope_dim;
    r.rope.interleaved = t == "deepseek_v2" || bool_or(c, "rope_interleave", true);
  }
  if (r.rope.dim % 2 != 0) refuse("the rotary width " + std::to_string(r.rope.dim) + " is odd");
  read_rope(c, r);
  const int64_t score_dim = r.mla ? r.qk_nope_dim + r.qk_rope_dim : r.head_dim;
  r.softmax_scale = 1.0 / std::sqrt(double(score_dim));
  // DeepSeek: the softmax scale takes YaRN's mscale twice (transformers' DeepseekV2Attention,
  // with rope_scaling["factor"] as written, not the context ratio).
  if (r.mla && r.rope.type == "yarn" && r.rope.mscale_all_dim != 0) {
    const double m = yarn_mscale(number_or(c["rope_scaling"], "factor", 1), r.rope.mscale_all_dim);
    r.softmax_scale *= m * m;
  }
}

// Which layers are MoE, and their routing rule.
void read_moe(const json& c, RunConfig& r) {
  const std::string& t = r.model_type;
  const int L = r.n_layers;
  r.moe_layer.assign(size_t(L), true);
  r.dense_hidden = int_or(c, "intermediate_size", 0);
  if (t == "mixtral") {
    r.n_experts = int(required_int(c, "num_local_experts"));
    r.expert_hidden = required_int(c, "intermediate_size");
    r.renormalize = true;  // Mixtral always renormalises its top-k
  } else if (t == "olmoe" || t == "qwen2_moe" || t == "qwen3_moe") {
    r.n_experts = int(required_int(c, "num_experts"));
    r.expert_hidden = t == "olmoe" ? required_int(c, "intermediate_size")
                                   : required_int(c, "moe_intermediate_size");
    r.renormalize = bool_or(c, "norm_topk_prob", false);
    if (t != "olmoe") {
      const int64_t step = int_or(c, "decoder_sparse_step", 1);
      if (step < 1) refuse("\"decoder_sparse_step\" must be >= 1");
      std::set<int64_t> mlp_only;
      if (present(c, "mlp_only_layers")) {
        if (!c["mlp_only_layers"].is_array()) refuse("\"mlp_only_layers\" is not a list");
        for (const json& v : c["mlp_only_layers"]) {
          if (!v.is_number_integer()) refuse("\"mlp_only_layers\" holds a non-integer");
          mlp_only.insert(v.get<int64_t>());
        }
      }
      for (int l = 0; l < L; ++l)
        r.moe_layer[size_t(l)] = !mlp_only.count(l) && (l + 1) % step == 0;
    }
    if (t == "qwen2_moe") {
      r.shared_hidden = int_or(c, "shared_expert_intermediate_size", 0);
      r.shared_gate = r.shared_hidden > 0;
    }
  } else {  // deepseek_v2, deepseek_v3
    r.n_experts = int(required_int(c, "n_routed_experts"));
    r.expert_hidden = required_int(c, "moe_intermediate_size");
    r.shared_hidden = r.expert_hidden * int_or(c, "n_shared_experts", 0);
    r.routed_scale = number_or(c, "routed_scaling_factor", t == "deepseek_v3" ? 2.5 : 1.0);
    const int64_t first_dense = int_or(c, "first_k_dense_replace", t == "deepseek_v3" ? 3 : 0);
    const int64_t freq = int_or(c, "moe_layer_freq", 1);
    if (freq != 1) refuse("moe_layer_freq " + std::to_string(freq) + " is not supported (1 is)");
    for (int l = 0; l < L; ++l) r.moe_layer[size_t(l)] = l >= first_dense;
    r.n_group = int(int_or(c, "n_group", 1));
    r.topk_group = int(int_or(c, "topk_group", r.n_group));
    if (r.n_group < 1 || r.n_experts % r.n_group != 0 || r.topk_group < 1 ||
        r.topk_group > r.n_group)
      refuse("n_group " + std::to_string(r.n_group) + " / topk_group " +
             std::to_string(r.topk_group) + " do not divide " + std::to_string(r.n_experts) +
             " experts");
    const std::string scoring = string_or(c, "scoring_func", t == "deepseek_v3" ? "sigmoid" : "softmax");
    if (t == "deepseek_v2") {
      if (scoring != "softmax") refuse("scoring_func \"" + scoring + "\" for deepseek_v2");
      const std::string method = string_or(c, "topk_method", "greedy");
      if (method == "greedy")
        r.select = SelectKind::Greedy;
      else if (method == "group_limited_greedy")
        r.select = SelectKind::GroupMax;
      else
        refuse("topk_method \"" + method + "\" is not supported for deepseek_v2");
      // transformers' DeepseekV2Moe never renormalises (norm_topk_prob is ignored).
    } else {
      if (scoring != "sigmoid") refuse("scoring_func \"" + scoring + "\" for deepseek_v3");
      const std::string method = string_or(c, "topk_method", "noaux_tc");
      if (method != "noaux_tc") refuse("topk_method \"" + method + "\" for deepseek_v3");
      r.score = ScoreKind::Sigmoid;
      r.select = SelectKind::GroupTop2Sum;
      r.score_bias = true;
      r.renormalize = bool_or(c, "norm_topk_prob", true);
      r.renorm_epsilon = 1e-20;
      if (r.n_experts / r.n_group < 2) refuse("groups of fewer than 2 experts for deepseek_v3");
    }
  }
  r.top_k = int(required_int(c, "num_experts_per_tok"));
  if (r.top_k > r.n_experts)
    refuse("num_experts_per_tok " + std::to_string(r.top_k) + " exceeds the " +
           std::to_string(r.n_experts) + " experts");
  if (r.select != SelectKind::Greedy &&
      r.top_k > r.topk_group * (r.n_experts / r.n_group))
    refuse("num_experts_per_tok exceeds the experts of topk_group groups");
  if (r.moe_layers().empty()) refuse("no layer is a MoE layer");
  for (int l = 0; l < L; ++l)
    if (!r.moe_layer[size_t(l)] && r.dense_hidden <= 0)
      refuse("layer " + std::to_string(l) + " is dense but intermediate_size is missing");
}

}  // namespace

std::vector<int> RunConfig::moe_layers() const {
  std::vector<int> out;
  for (int l = 0; l < n_layers; ++l)
    if (moe_layer[size_t(l)]) out.push_back(l);
  return out;
}

const std::vector<std::string>& runnable_model_types() {
  static const std::vector<std::string> types = {"mixtral",   "olmoe",       "qwen2_moe",
                                                 "qwen3_moe", "deepseek_v2", "deepseek_v3"};
  return types;
}

RunConfig read_run_config(const json& c) {
  if (!c.is_object()) refuse("missing (a downloaded model needs its config.json to run)");
  RunConfig r;
  r.model_type = string_or(c, "model_type", "");
  bool known = false;
  for (const std::string& t : runnable_model_types()) known = known || t == r.model_type;
  if (!known) {
    std::string list;
    for (const std::string& t : runnable_model_types()) list += (list.empty() ? "" : ", ") + t;
    refuse("model_type \"" + r.model_type + "\" cannot be run (these can: " + list + ")");
  }
  r.vocab = required_int(c, "vocab_size");
  r.hidden = required_int(c, "hidden_size");
  r.n_layers = int(required_int(c, "num_hidden_layers"));
  r.rms_eps = number_or(c, "rms_norm_eps", r.model_type == "mixtral" || r.model_type == "olmoe"
                                               ? 1e-5
                                               : 1e-6);
  r.tie_embeddings = bool_or(c, "tie_word_embeddings", false);
  r.max_positions = int_or(c, "max_position_embeddings", 0);
  if (present(c, "hidden_act") && string_or(c, "hidden_act", "") != "silu")
    refuse("hidden_act \"" + string_or(c, "hidden_act", "") + "\" is not supported (silu is)");
  read_attention(c, r);
  read_moe(c, r);
  return r;
}

}  // namespace unipool::hf
