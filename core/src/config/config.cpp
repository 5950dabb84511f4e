#include "unipool/config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "config/json_field.h"
#include "lock/lock_config.h"
#include "unipool/architecture.h"
#include "unipool/random.h"

namespace unipool {

using nlohmann::json;

bool ModelConfig::operator==(const ModelConfig& o) const { return to_json(*this) == to_json(o); }
bool TrainOptions::operator==(const TrainOptions& o) const { return to_json(*this) == to_json(o); }

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

void require_int_range(const char* name, int value, int lo, int hi) {
  require(value >= lo && value <= hi, std::string(name) + " = " + std::to_string(value) +
                                          " is out of range [" + std::to_string(lo) + ", " +
                                          std::to_string(hi) + "]");
}

void require_real_range(const char* name, double value, double lo, double hi) {
  require(std::isfinite(value) && value >= lo && value <= hi,
          std::string(name) + " = " + std::to_string(value) + " is out of range [" +
              std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

template <typename T>
T field(const json& j, const char* key) {
  return json_field<T>(j, key);
}

json parse_object(const std::string& text, const char* what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ConfigError(std::string(what) + " is not valid JSON: " + e.what());
  }
  require(j.is_object(), std::string(what) + " must be a JSON object");
  return j;
}

}  // namespace

void validate(const ModelConfig& c) {
  require(c.vocab_size == 256,
          "vocab_size must be 256 (byte-level tokenizer), got " + std::to_string(c.vocab_size));
  require_int_range("d_model", c.d_model, 2, 16384);
  require_int_range("n_layers", c.n_layers, 1, 512);
  require_int_range("n_heads", c.n_heads, 1, 1024);
  require(c.d_model % c.n_heads == 0, "d_model must be a multiple of n_heads");
  require(c.head_dim() % 2 == 0, "d_model / n_heads must be even (RoPE rotates pairs)");
  require_int_range("n_kv_heads", c.n_kv_heads, 1, c.n_heads);
  require(c.n_heads % c.n_kv_heads == 0, "n_heads must be a multiple of n_kv_heads");
  require_int_range("expert_hidden", c.expert_hidden, 1, 65536);
  require_int_range("layers_per_group", c.layers_per_group, 1, c.n_layers);
  require(c.n_layers % c.layers_per_group == 0, "layers_per_group must divide n_layers");
  require_int_range("experts_per_group", c.experts_per_group, 1, 65536);
  require_int_range("top_k", c.top_k, 1, c.experts_per_group);
  require(c.router == "norm" || c.router == "softmax",
          "router must be \"norm\" or \"softmax\", got \"" + c.router + "\"");
  if (c.router == "norm") require_real_range("router_c", c.router_c, 1e-6, 1e6);
  require(c.balance == "pool" || c.balance == "layer" || c.balance == "none",
          "balance must be \"pool\", \"layer\" or \"none\", got \"" + c.balance + "\"");
  require_real_range("aux_coef", c.aux_coef, 0.0, 100.0);
  require_real_range("z_coef", c.z_coef, 0.0, 100.0);
  require_real_range("rope_theta", c.rope_theta, 1.0, 1e12);
  require_real_range("norm_eps", c.norm_eps, 1e-12, 1.0);
  require_int_range("max_seq_len", c.max_seq_len, 1, 1 << 20);
  // Keeps a crafted config from asking for an absurd allocation before shapes are checked.
  const double params = double(c.n_experts()) * 3.0 * c.d_model * c.expert_hidden +
                        double(c.n_layers) * 4.0 * c.d_model * c.d_model;
  require(params < 4e9, "config describes more than 4 billion parameters");
  validate_lock(c);
}

std::string to_json(const ModelConfig& c) {
  json j = {{"vocab_size", c.vocab_size},
            {"d_model", c.d_model},
            {"n_layers", c.n_layers},
            {"n_heads", c.n_heads},
            {"n_kv_heads", c.n_kv_heads},
            {"expert_hidden", c.expert_hidden},
            {"layers_per_group", c.layers_per_group},
            {"experts_per_group", c.experts_per_group},
            {"top_k", c.top_k},
            {"router", c.router},
            {"router_c", c.router_c},
            {"renormalize_gates", c.renormalize_gates},
            {"balance", c.balance},
            {"aux_coef", c.aux_coef},
            {"z_coef", c.z_coef},
            {"rope_theta", c.rope_theta},
            {"norm_eps", c.norm_eps},
            {"max_seq_len", c.max_seq_len}};
  if (c.lock.enabled) j["lock"] = lock_to_json(c.lock);
  return j.dump();
}

ModelConfig config_from_json(const std::string& text) {
  const json j = parse_object(text, "config");
  static const std::vector<std::string> known = {
      "vocab_size",    "d_model",           "n_layers",          "n_heads",  "n_kv_heads",
      "expert_hidden", "layers_per_group",  "experts_per_group", "top_k",    "router",
      "router_c",      "renormalize_gates", "balance",           "aux_coef", "z_coef",
      "rope_theta",    "norm_eps",          "max_seq_len",       "lock"};
  for (const auto& item : j.items()) {
    require(std::find(known.begin(), known.end(), item.key()) != known.end(),
            "unknown config key '" + item.key() + "'");
  }
  ModelConfig c;
  c.vocab_size = field<int>(j, "vocab_size");
  c.d_model = field<int>(j, "d_model");
  c.n_layers = field<int>(j, "n_layers");
  c.n_heads = field<int>(j, "n_heads");
  c.n_kv_heads = field<int>(j, "n_kv_heads");
  c.expert_hidden = field<int>(j, "expert_hidden");
  c.layers_per_group = field<int>(j, "layers_per_group");
  c.experts_per_group = field<int>(j, "experts_per_group");
  c.top_k = field<int>(j, "top_k");
  c.router = field<std::string>(j, "router");
  c.renormalize_gates = field<bool>(j, "renormalize_gates");
  c.balance = field<std::string>(j, "balance");
  c.aux_coef = field<double>(j, "aux_coef");
  c.z_coef = field<double>(j, "z_coef");
  c.rope_theta = field<double>(j, "rope_theta");
  c.norm_eps = field<double>(j, "norm_eps");
  c.max_seq_len = field<int>(j, "max_seq_len");
  if (j.contains("lock")) c.lock = lock_from_json(j.at("lock"));
  if (j.contains("router_c")) {
    c.router_c = field<double>(j, "router_c");
  } else {
    // Hand-written configs may leave the constant out; it is a pure function of (Mg, k).
    require_int_range("experts_per_group", c.experts_per_group, 1, 65536);
    require_int_range("top_k", c.top_k, 1, c.experts_per_group);
    refresh_router_constant(c);
  }
  validate(c);
  return c;
}

double norm_router_constant(int mg, int k, int samples, uint64_t seed) {
  if (mg < 1 || k < 1 || k > mg || samples < 1) throw ConfigError("bad NormRouter constant input");
  Rng rng(seed);
  std::vector<double> y(static_cast<size_t>(mg));
  double sum = 0.0;
  int64_t used = 0;
  for (int s = 0; s < samples; ++s) {
    double norm2 = 0.0;
    for (auto& v : y) {
      v = rng.normal();
      norm2 += v * v;
    }
    const double inv_norm = 1.0 / std::sqrt(norm2);
    for (auto& v : y) v = std::max(0.0, v * inv_norm);
    std::partial_sort(y.begin(), y.begin() + k, y.end(), std::greater<double>());
    double top2 = 0.0;
    for (int j = 0; j < k; ++j) top2 += y[static_cast<size_t>(j)] * y[static_cast<size_t>(j)];
    if (top2 <= 0.0) continue;  // all-zero y: 1/0 would make the mean infinite (SPEC section 3)
    sum += 1.0 / std::sqrt(top2);
    ++used;
  }
  if (used == 0) throw ConfigError("NormRouter constant: every sample was all zero");
  return sum / static_cast<double>(used);
}

void refresh_router_constant(ModelConfig& c) {
  c.router_c = c.router == "norm" ? norm_router_constant(c.experts_per_group, c.top_k) : 0.0;
}

ParamCounts count_parameters(const ModelConfig& c) {
  const int64_t d = c.d_model, hd = c.head_dim(), h = c.expert_hidden, L = c.n_layers;
  const int64_t attn = d * c.n_heads * hd * 2 + d * c.n_kv_heads * hd * 2;
  const int64_t per_layer =
      attn + 2 * d + int64_t(c.experts_per_group) * d + (c.router == "norm" ? 1 : 0);
  const int64_t expert_one = 3 * d * h;
  ParamCounts p;
  p.expert = int64_t(c.n_experts()) * expert_one;
  p.total = 2 * int64_t(c.vocab_size) * d + d + L * per_layer + p.expert;
  p.active_per_token = int64_t(c.vocab_size) * d + d + L * (per_layer + c.top_k * expert_one);
  p.vanilla_budget = kVanillaExpertsPerLayer * L * expert_one;
  p.budget_ratio = double(p.expert) / double(p.vanilla_budget);
  return p;
}

std::string to_json(const TrainOptions& o) {
  json j = {{"lr", o.lr},
            {"min_lr_ratio", o.min_lr_ratio},
            {"warmup_steps", o.warmup_steps},
            {"total_steps", o.total_steps},
            {"weight_decay", o.weight_decay},
            {"beta1", o.beta1},
            {"beta2", o.beta2},
            {"adam_eps", o.adam_eps},
            {"grad_clip", o.grad_clip},
            {"batch", o.batch},
            {"seq", o.seq},
            {"seed", o.seed},
            {"valid_fraction", o.valid_fraction}};
  // Only when set: the options files of runs without them stay byte for byte as they were.
  if (o.router_init_std > 0) j["router_init_std"] = o.router_init_std;
  if (o.router_weight_decay >= 0) j["router_weight_decay"] = o.router_weight_decay;
  return j.dump();
}

TrainOptions train_options_from_json(const std::string& text) {
  const json j = parse_object(text, "training options");
  TrainOptions o;
  o.lr = field<double>(j, "lr");
  o.min_lr_ratio = field<double>(j, "min_lr_ratio");
  o.warmup_steps = field<int>(j, "warmup_steps");
  o.total_steps = field<int>(j, "total_steps");
  o.weight_decay = field<double>(j, "weight_decay");
  o.beta1 = field<double>(j, "beta1");
  o.beta2 = field<double>(j, "beta2");
  o.adam_eps = field<double>(j, "adam_eps");
  o.grad_clip = field<double>(j, "grad_clip");
  o.batch = field<int>(j, "batch");
  o.seq = field<int>(j, "seq");
  require(j.contains("seed") && j.at("seed").is_number_unsigned(),
          "seed must be an unsigned integer");
  o.seed = j.at("seed").get<uint64_t>();
  o.valid_fraction = field<double>(j, "valid_fraction");
  if (j.contains("router_init_std")) o.router_init_std = field<double>(j, "router_init_std");
  if (j.contains("router_weight_decay"))
    o.router_weight_decay = field<double>(j, "router_weight_decay");
  validate(o);
  return o;
}

void validate(const TrainOptions& o) {
  require_real_range("lr", o.lr, 0.0, 10.0);
  require_real_range("min_lr_ratio", o.min_lr_ratio, 0.0, 1.0);
  require_int_range("warmup_steps", o.warmup_steps, 0, 1 << 30);
  require_int_range("total_steps", o.total_steps, 1, 1 << 30);
  require_real_range("weight_decay", o.weight_decay, 0.0, 10.0);
  require_real_range("beta1", o.beta1, 0.0, 0.999999);
  require_real_range("beta2", o.beta2, 0.0, 0.999999);
  require_real_range("adam_eps", o.adam_eps, 1e-30, 1.0);
  require_real_range("grad_clip", o.grad_clip, 0.0, 1e9);
  require_int_range("batch", o.batch, 1, 1 << 16);
  require_int_range("seq", o.seq, 1, 1 << 20);
  require_real_range("valid_fraction", o.valid_fraction, 0.0, 0.9);
  require_real_range("router_init_std", o.router_init_std, 0.0, 1.0);
  if (!(o.router_weight_decay < 0))  // negative: off; NaN is refused here
    require_real_range("router_weight_decay", o.router_weight_decay, 0.0, 10.0);
}

}  // namespace unipool
