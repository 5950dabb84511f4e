#include "hf/run_layers.h"

#include <cmath>

namespace unipool::hf {

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  return x * at::rsqrt(x.pow(2).mean(-1, true) + eps) * w;
}

namespace {

// transformers' find_correction_dim: the rotary dimension whose wavelength fits
// `rotations` times into the pre-training context.
double correction_dim(double rotations, double dim, double base, double max_positions) {
  return dim * std::log(max_positions / (rotations * 2 * M_PI)) / (2 * std::log(base));
}

// (dim / 2) inverse frequencies, float32 as transformers computes them.
at::Tensor inverse_frequencies(const RopeSpec& r) {
  const int64_t dim = r.dim;
  const at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / double(dim);
  const at::Tensor pos_freqs = at::pow(r.theta, exponents);  // (dim/2)
  if (r.type == "default") return 1.0 / pos_freqs;
  if (r.type == "linear") return 1.0 / pos_freqs / r.factor;
  // YaRN: interpolate the low frequencies, keep the high ones, ramp between.
  double low = correction_dim(r.beta_fast, double(dim), r.theta, r.original_max_positions);
  double high = correction_dim(r.beta_slow, double(dim), r.theta, r.original_max_positions);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;
  const at::Tensor ramp =
      at::clamp((at::arange(dim / 2, at::kFloat) - low) / (high - low), 0.0, 1.0);
  const at::Tensor extrapolation = 1.0 - ramp;  // 1: keep the original frequency
  const at::Tensor keep = 1.0 / pos_freqs, interpolated = 1.0 / (r.factor * pos_freqs);
  return interpolated * (1.0 - extrapolation) + keep * extrapolation;
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

}  // namespace

RopeTables rope_tables(const RopeSpec& rope, int64_t seq) {
  const at::Tensor positions = at::arange(seq, at::kFloat);
  const at::Tensor freqs = at::outer(positions, inverse_frequencies(rope));  // (S, dim/2)
  const at::Tensor angles = at::cat({freqs, freqs}, -1);                     // (S, dim)
  return {angles.cos() * rope.attention_factor, angles.sin() * rope.attention_factor};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& t, bool interleaved) {
  const int64_t S = x.size(-2), dim = x.size(-1);
  const at::Tensor cos = t.cos.narrow(0, 0, S), sin = t.sin.narrow(0, 0, S);
  if (!interleaved) return x * cos + rotate_half(x) * sin;
  // Pairs (2i, 2i+1) rotate by angle i: as complex numbers, x_pair * e^{i angle}.
  const at::Tensor pairs = x.reshape({x.size(0), x.size(1), S, dim / 2, 2});
  const at::Tensor a = pairs.select(-1, 0), b = pairs.select(-1, 1);
  const at::Tensor c = cos.narrow(-1, 0, dim / 2), s = sin.narrow(-1, 0, dim / 2);
  return at::stack({a * c - b * s, a * s + b * c}, -1).reshape(x.sizes());
}

namespace {

at::Tensor linear(const RunWeights& w, const std::string& name, int64_t out, int64_t in,
                  const at::Tensor& x, bool bias) {
  const at::Tensor weight = w.get(name + ".weight", {out, in});
  if (!bias) return at::linear(x, weight);
  return at::linear(x, weight, w.get(name + ".bias", {out}));
}

// Causal softmax attention. q (B, H, S, d), k (B, Hkv, S, d), v (B, Hkv, S, dv) ->
// (B, S, H * dv). Query head j reads kv head j / (H / Hkv).
at::Tensor attend(const at::Tensor& q, at::Tensor k, at::Tensor v, double scale,
                  int64_t sliding_window) {
  const int64_t H = q.size(1), S = q.size(2);
  if (k.size(1) != H) {
    k = k.repeat_interleave(H / k.size(1), 1);
    v = v.repeat_interleave(H / v.size(1), 1);
  }
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) * scale;  // (B, H, S, S)
  const at::Tensor i = at::arange(S, at::kLong).unsqueeze(1), j = at::arange(S, at::kLong);
  at::Tensor blocked = j > i;
  // transformers' sliding window: key j is seen from query i when i - j < window.
  if (sliding_window > 0) blocked = blocked | ((i - j) >= sliding_window);
  scores = scores.masked_fill(blocked, -std::numeric_limits<float>::infinity());
  const at::Tensor out = at::matmul(at::softmax(scores, -1), v);  // (B, H, S, dv)
  return out.transpose(1, 2).reshape({q.size(0), S, H * v.size(-1)});
}

// (B, S, heads * d) -> (B, heads, S, d)
at::Tensor heads(const at::Tensor& x, int64_t n, int64_t d) {
  return x.view({x.size(0), x.size(1), n, d}).transpose(1, 2);
}

at::Tensor standard_attention(const RunConfig& c, const RunWeights& w, const std::string& p,
                              const at::Tensor& x, const RopeTables& rope) {
  const int64_t H = c.n_heads, Hkv = c.n_kv_heads, d = c.head_dim, D = c.hidden;
  at::Tensor q = linear(w, p + "q_proj", H * d, D, x, c.qkv_bias);
  at::Tensor k = linear(w, p + "k_proj", Hkv * d, D, x, c.qkv_bias);
  at::Tensor v = linear(w, p + "v_proj", Hkv * d, D, x, c.qkv_bias);
  if (c.qk_norm_whole) {  // OLMoE: over the whole projections, before the head split
    q = rms_norm(q, w.get(p + "q_norm.weight", {H * d}), c.rms_eps);
    k = rms_norm(k, w.get(p + "k_norm.weight", {Hkv * d}), c.rms_eps);
  }
  if (c.clip_qkv > 0) {
    q = q.clamp(-c.clip_qkv, c.clip_qkv);
    k = k.clamp(-c.clip_qkv, c.clip_qkv);
    v = v.clamp(-c.clip_qkv, c.clip_qkv);
  }
  q = heads(q, H, d);
  k = heads(k, Hkv, d);
  v = heads(v, Hkv, d);
  if (c.qk_norm_per_head) {  // Qwen3: one weight of width head_dim for every head
    q = rms_norm(q, w.get(p + "q_norm.weight", {d}), c.rms_eps);
    k = rms_norm(k, w.get(p + "k_norm.weight", {d}), c.rms_eps);
  }
  q = apply_rope(q, rope, c.rope.interleaved);
  k = apply_rope(k, rope, c.rope.interleaved);
  const at::Tensor out = attend(q, k, v, c.softmax_scale, c.sliding_window);
  return linear(w, p + "o_proj", D, H * d, out, c.o_bias);
}

// transformers builds MLA's q_a_layernorm and kv_a_layernorm with RMSNorm's default eps,
// not rms_norm_eps.
constexpr double kLatentNormEps = 1e-6;

// DeepSeek's multi-head latent attention: keys and values come from a compressed kv of width
// kv_lora_rank plus one rotary key head shared by every query head.
at::Tensor latent_attention(const RunConfig& c, const RunWeights& w, const std::string& p,
                            const at::Tensor& x, const RopeTables& rope) {
  const int64_t H = c.n_heads, D = c.hidden, nope = c.qk_nope_dim, rot = c.qk_rope_dim;
  const int64_t qk = nope + rot, B = x.size(0), S = x.size(1);
  at::Tensor q;
  if (c.q_lora_rank > 0) {
    q = linear(w, p + "q_a_proj", c.q_lora_rank, D, x, c.qkv_bias);
    q = rms_norm(q, w.get(p + "q_a_layernorm.weight", {c.q_lora_rank}), kLatentNormEps);
    q = linear(w, p + "q_b_proj", H * qk, c.q_lora_rank, q, false);
  } else {
    q = linear(w, p + "q_proj", H * qk, D, x, false);
  }
  q = heads(q, H, qk);  // (B, H, S, nope + rope)
  const at::Tensor kv_a = linear(w, p + "kv_a_proj_with_mqa", c.kv_lora_rank + rot, D, x, c.qkv_bias);
  at::Tensor kv = rms_norm(kv_a.narrow(-1, 0, c.kv_lora_rank),
                           w.get(p + "kv_a_layernorm.weight", {c.kv_lora_rank}), kLatentNormEps);
  kv = heads(linear(w, p + "kv_b_proj", H * (nope + c.v_head_dim), c.kv_lora_rank, kv, false), H,
             nope + c.v_head_dim);  // (B, H, S, nope + v)
  const at::Tensor k_rot =
      apply_rope(kv_a.narrow(-1, c.kv_lora_rank, rot).view({B, 1, S, rot}), rope, c.rope.interleaved);
  const at::Tensor q_rot = apply_rope(q.narrow(-1, nope, rot), rope, c.rope.interleaved);
  const at::Tensor query = at::cat({q.narrow(-1, 0, nope), q_rot}, -1);
  const at::Tensor key = at::cat({kv.narrow(-1, 0, nope), k_rot.expand({B, H, S, rot})}, -1);
  const at::Tensor value = kv.narrow(-1, nope, c.v_head_dim);
  const at::Tensor out = attend(query, key, value, c.softmax_scale, c.sliding_window);
  return linear(w, p + "o_proj", D, H * c.v_head_dim, out, c.o_bias);
}

}  // namespace

at::Tensor attention(const RunConfig& c, const RunWeights& w, int layer, const at::Tensor& x,
                     const RopeTables& rope) {
  const std::string p = layer_prefix(layer) + "self_attn.";
  return c.mla ? latent_attention(c, w, p, x, rope) : standard_attention(c, w, p, x, rope);
}

MlpNames mlp_names(const std::string& prefix, bool mixtral_expert) {
  if (mixtral_expert) return {prefix + "w1.weight", prefix + "w3.weight", prefix + "w2.weight"};
  return {prefix + "gate_proj.weight", prefix + "up_proj.weight", prefix + "down_proj.weight"};
}

at::Tensor swiglu(const RunWeights& w, const MlpNames& n, int64_t hidden, int64_t inner,
                  const at::Tensor& x, MlpBuffers* b) {
  const at::Tensor g = at::linear(x, w.get(n.gate, {inner, hidden}, b ? &b->gate : nullptr));
  const at::Tensor u = at::linear(x, w.get(n.up, {inner, hidden}, b ? &b->up : nullptr));
  return at::linear(at::silu(g) * u, w.get(n.down, {hidden, inner}, b ? &b->down : nullptr));
}

}  // namespace unipool::hf
