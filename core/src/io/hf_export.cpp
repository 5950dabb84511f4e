#include "unipool/hf_export.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "unipool/engine.h"
#include "tokenizer/text_steps.h"
#include "unipool/safetensors.h"

namespace unipool {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const TensorRecord& need(const SafetensorsFile& f, const std::string& name) {
  const TensorRecord* t = f.find(name);
  if (!t) throw std::runtime_error("the checkpoint has no tensor " + name);
  return *t;
}

TensorRecord renamed(const TensorRecord& t, const std::string& name) {
  TensorRecord r = t;
  r.name = name;
  return r;
}

// Expert `e` of a stacked (N, rows, cols) pool tensor as its own (rows, cols) tensor.
TensorRecord slice(const TensorRecord& pool, int64_t e, const std::string& name) {
  TensorRecord r;
  r.name = name;
  r.dtype = pool.dtype;
  r.shape = {pool.shape[1], pool.shape[2]};
  const size_t bytes = size_t(pool.shape[1] * pool.shape[2]) * dtype_size(pool.dtype);
  r.bytes.assign(pool.bytes.begin() + long(size_t(e) * bytes),
                 pool.bytes.begin() + long(size_t(e + 1) * bytes));
  return r;
}

TensorRecord zeros(const std::string& name, std::vector<int64_t> shape) {
  TensorRecord r;
  r.name = name;
  r.dtype = DType::F32;
  r.shape = std::move(shape);
  r.bytes.assign(size_t(r.numel()) * 4, 0);
  return r;
}

json byte_tokenizer() {
  json vocab = json::object();
  // GPT-2's printable character for each byte (the tokenizers' own table): ids = byte values.
  const auto& chars = tok::byte_to_unicode();
  for (int b = 0; b < 256; ++b) vocab[chars[size_t(b)]] = b;
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
            {"use_regex", false}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false},
                       {"trim_offsets", false}, {"use_regex", false}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
            {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
            {"vocab", vocab}, {"merges", json::array()}}}};
}

HfExportReport plan(const ModelConfig& c, HfExportFormat format) {
  HfExportReport r;
  const bool mixtral = format == HfExportFormat::Mixtral;
  if (c.router == "norm") {
    r.exact = false;
    r.notes.push_back(
        "NormRouter (scale * c * relu(z / ||z||)) has no counterpart in Mixtral or Qwen2-MoE: "
        "the exported router is a softmax over the same logits, so it picks the same experts "
        "wherever a token has a positive logit but gives them other gates");
  } else if (mixtral && !c.renormalize_gates && c.top_k < c.experts_per_group) {
    r.exact = false;
    r.notes.push_back(
        "Mixtral always renormalises the top-k gates and this model does not (its gate is the "
        "softmax probability): use --format hf-qwen2-moe (norm_topk_prob false) for an exact "
        "copy");
  }
  if (c.lock.enabled) {
    r.exact = false;
    r.notes.push_back("UniPool-lock's partition (experts outside a layer's share masked) is "
                      "not kept: every layer routes over all its copies");
  }
  if (c.layers_per_group > 1)
    r.notes.push_back("the shared pool is written as per-layer copies of its experts (" +
                      std::to_string(c.layers_per_group) + " layers share each pool: " +
                      std::to_string(c.layers_per_group) + "x the expert weights on disk)");
  if (!mixtral)
    r.notes.push_back("q/k/v biases and a shared expert of width 1 are written as zeros "
                      "(Qwen2-MoE has them; zeros change nothing)");
  return r;
}

json config_json(const ModelConfig& c, HfExportFormat format, const std::string& source,
                 int64_t step, const HfExportReport& r) {
  const bool mixtral = format == HfExportFormat::Mixtral;
  json j = {{"architectures", {mixtral ? "MixtralForCausalLM" : "Qwen2MoeForCausalLM"}},
            {"model_type", mixtral ? "mixtral" : "qwen2_moe"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.d_model},
            {"num_hidden_layers", c.n_layers},
            {"num_attention_heads", c.n_heads},
            {"num_key_value_heads", c.n_kv_heads},
            {"head_dim", c.d_model / c.n_heads},
            {"hidden_act", "silu"},
            {"max_position_embeddings", c.max_seq_len},
            {"rms_norm_eps", c.norm_eps},
            {"rope_theta", c.rope_theta},
            {"num_experts_per_tok", c.top_k},
            {"tie_word_embeddings", false},
            {"torch_dtype", "float32"},
            {"bos_token_id", nullptr},
            {"eos_token_id", nullptr}};
  if (mixtral) {
    j["intermediate_size"] = c.expert_hidden;
    j["num_local_experts"] = c.experts_per_group;
    j["sliding_window"] = nullptr;
  } else {
    j["intermediate_size"] = c.expert_hidden;
    j["moe_intermediate_size"] = c.expert_hidden;
    j["shared_expert_intermediate_size"] = 1;
    j["num_experts"] = c.experts_per_group;
    j["norm_topk_prob"] = c.renormalize_gates;
    j["decoder_sparse_step"] = 1;
    j["mlp_only_layers"] = json::array();
    j["use_sliding_window"] = false;
    j["qkv_bias"] = true;
  }
  j["unipool_export"] = {{"source", source}, {"step", step}, {"exact", r.exact},
                         {"notes", r.notes}, {"tokenizer", "bytes: token id = byte value"}};
  return j;
}

void write_text(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot rename " + tmp.string() + ": " + ec.message());
}

}  // namespace

HfExportReport plan_hf_export(const std::string& checkpoint, HfExportFormat format) {
  return plan(inspect_checkpoint(checkpoint).config, format);
}

HfExportReport export_hf(const std::string& checkpoint, const std::string& out_dir,
                         HfExportFormat format, bool approximate) {
  const CheckpointInfo info = inspect_checkpoint(checkpoint);  // validated config and tensors
  const ModelConfig& c = info.config;
  HfExportReport r = plan(c, format);
  if (!r.exact && !approximate) {
    std::string why;
    for (const std::string& n : r.notes) why += "\n  - " + n;
    throw std::runtime_error("this model cannot be exported exactly in that layout:" + why +
                             "\n(--approximate exports it anyway and records the notes in "
                             "config.json)");
  }
  const SafetensorsFile f = read_safetensors(checkpoint);
  const bool mixtral = format == HfExportFormat::Mixtral;
  std::vector<TensorRecord> out;
  out.push_back(renamed(need(f, "embed.weight"), "model.embed_tokens.weight"));
  const TensorRecord& w_gate = need(f, "pool.w_gate");
  const TensorRecord& w_up = need(f, "pool.w_up");
  const TensorRecord& w_down = need(f, "pool.w_down");
  const int64_t Mg = c.experts_per_group, D = c.d_model;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string ours = "layers." + std::to_string(l) + ".";
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back(renamed(need(f, ours + "attn_norm.weight"), p + "input_layernorm.weight"));
    out.push_back(renamed(need(f, ours + "ffn_norm.weight"), p + "post_attention_layernorm.weight"));
    for (const char* m : {"q", "k", "v", "o"})
      out.push_back(renamed(need(f, ours + "attn." + m + "_proj.weight"),
                            p + "self_attn." + m + "_proj.weight"));
    const std::string moe = p + (mixtral ? "block_sparse_moe." : "mlp.");
    out.push_back(renamed(need(f, ours + "router.weight"), moe + "gate.weight"));
    const int64_t first = int64_t(c.group_of_layer(l)) * Mg;
    for (int64_t e = 0; e < Mg; ++e) {
      const std::string x = moe + "experts." + std::to_string(e) + ".";
      out.push_back(slice(w_gate, first + e, x + (mixtral ? "w1.weight" : "gate_proj.weight")));
      out.push_back(slice(w_up, first + e, x + (mixtral ? "w3.weight" : "up_proj.weight")));
      out.push_back(slice(w_down, first + e, x + (mixtral ? "w2.weight" : "down_proj.weight")));
    }
    if (!mixtral) {
      const int64_t kv = int64_t(c.n_kv_heads) * (D / c.n_heads);
      out.push_back(zeros(p + "self_attn.q_proj.bias", {D}));
      out.push_back(zeros(p + "self_attn.k_proj.bias", {kv}));
      out.push_back(zeros(p + "self_attn.v_proj.bias", {kv}));
      out.push_back(zeros(p + "mlp.shared_expert.gate_proj.weight", {1, D}));
      out.push_back(zeros(p + "mlp.shared_expert.up_proj.weight", {1, D}));
      out.push_back(zeros(p + "mlp.shared_expert.down_proj.weight", {D, 1}));
      out.push_back(zeros(p + "mlp.shared_expert_gate.weight", {1, D}));
    }
  }
  out.push_back(renamed(need(f, "final_norm.weight"), "model.norm.weight"));
  out.push_back(renamed(need(f, "lm_head.weight"), "lm_head.weight"));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw std::runtime_error("cannot create " + out_dir + ": " + ec.message());
  const fs::path dir(out_dir);
  write_safetensors_atomic((dir / "model.safetensors").string(), {{"format", "pt"}}, out);
  write_text(dir / "config.json", config_json(c, format, checkpoint, info.step, r).dump(1) + "\n");
  write_text(dir / "tokenizer.json", byte_tokenizer().dump(1) + "\n");
  r.files = {"config.json", "model.safetensors", "tokenizer.json"};
  return r;
}

}  // namespace unipool
