// Parameters and the forward pass (SPEC section 2), MoE dispatch (section 3), losses (section 4).
#include "model.h"

#include <chrono>
#include <cmath>

#include "ops.h"
#include "rng.h"

namespace unipool {

void ParamStore::add(const std::string& name, at::Tensor tensor) {
  TORCH_CHECK(!contains(name), "duplicate parameter ", name);
  index_[name] = names_.size();
  names_.push_back(name);
  tensors_.push_back(std::move(tensor));
}

at::Tensor& ParamStore::get(const std::string& name) {
  auto it = index_.find(name);
  TORCH_CHECK(it != index_.end(), "no parameter named ", name);
  return tensors_[it->second];
}

const at::Tensor& ParamStore::get(const std::string& name) const {
  return const_cast<ParamStore*>(this)->get(name);
}

bool ParamStore::decays(const std::string& name) {
  const auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return !(ends_with("norm.weight") || ends_with("router.scale"));
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(
    const ModelConfig& c) {
  const int64_t V = c.vocab_size, d = c.d_model, hd = c.head_dim(), h = c.expert_hidden;
  const int64_t N = c.n_experts(), Mg = c.experts_per_group;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({"embed.weight", {V, d}});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    out.push_back({p + "attn_norm.weight", {d}});
    out.push_back({p + "attn.q_proj.weight", {c.n_heads * hd, d}});
    out.push_back({p + "attn.k_proj.weight", {c.n_kv_heads * hd, d}});
    out.push_back({p + "attn.v_proj.weight", {c.n_kv_heads * hd, d}});
    out.push_back({p + "attn.o_proj.weight", {d, c.n_heads * hd}});
    out.push_back({p + "ffn_norm.weight", {d}});
    out.push_back({p + "router.weight", {Mg, d}});
    if (c.router == "norm") out.push_back({p + "router.scale", {1}});
  }
  out.push_back({"pool.w_gate", {N, h, d}});
  out.push_back({"pool.w_up", {N, h, d}});
  out.push_back({"pool.w_down", {N, d, h}});
  out.push_back({"final_norm.weight", {d}});
  out.push_back({"lm_head.weight", {V, d}});
  return out;
}

ParamStore init_parameters(const ModelConfig& c, uint64_t seed, at::ScalarType dtype) {
  // GPT-2 style: N(0, 0.02), residual outputs (o_proj, w_down) scaled by 1/sqrt(2L).
  const double base = 0.02, residual = base / std::sqrt(2.0 * c.n_layers);
  ParamStore store;
  uint64_t index = 0;
  for (const auto& [name, shape] : expected_parameters(c)) {
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(at::kDouble));
    double* p = t.data_ptr<double>();
    const bool is_one = name.find("norm.weight") != std::string::npos ||
                        name.find("router.scale") != std::string::npos;
    const double std_dev =
        (name.find("o_proj") != std::string::npos || name == "pool.w_down") ? residual : base;
    Rng rng(hash_u64(seed, index++));  // one stream per tensor: adding one shifts no other
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = is_one ? 1.0 : std_dev * rng.normal();
    store.add(name, t.to(dtype).requires_grad_(true));
  }
  return store;
}

at::Tensor dispatch_experts(const at::Tensor& x, const at::Tensor& global_ids,
                            const at::Tensor& gates, const at::Tensor& w_gate,
                            const at::Tensor& w_up, const at::Tensor& w_down,
                            bool accumulate_pool_grads) {
  const int64_t T = x.size(0), k = global_ids.size(1), A = T * k, N = w_gate.size(0);
  const at::Tensor ids = global_ids.contiguous();
  const int64_t* idp = ids.data_ptr<int64_t>();
  // Counting sort of the T*k (token, choice) pairs by expert; stable, so deterministic.
  std::vector<int64_t> counts(static_cast<size_t>(N), 0);
  for (int64_t a = 0; a < A; ++a) {
    TORCH_CHECK(idp[a] >= 0 && idp[a] < N, "expert id out of range");
    ++counts[size_t(idp[a])];
  }
  std::vector<int64_t> cursor(static_cast<size_t>(N), 0);
  for (int64_t e = 1; e < N; ++e) cursor[size_t(e)] = cursor[size_t(e - 1)] + counts[size_t(e - 1)];
  const auto long_opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor order = at::empty({A}, long_opts);  // (A): sorted slot -> (token, choice) pair
  at::Tensor token = at::empty({A}, long_opts);  // (A): sorted slot -> token
  int64_t *op = order.data_ptr<int64_t>(), *tp = token.data_ptr<int64_t>();
  for (int64_t a = 0; a < A; ++a) {
    const int64_t slot = cursor[size_t(idp[a])]++;
    op[slot] = a;
    tp[slot] = a / k;
  }
  const at::Tensor gates_sorted = gates.reshape({A}).index_select(0, order);  // (A)
  return moe_experts(x, gates_sorted, token, counts, k, w_gate, w_up, w_down,
                     accumulate_pool_grads);
}

namespace {

// Normalised entropy of each token's score distribution (scores / their sum), summed.
double router_entropy_sum(const at::Tensor& scores_in) {
  const at::Tensor s = scores_in.detach().to(at::kDouble).contiguous();
  const int64_t T = s.size(0), M = s.size(1);
  if (M < 2) return double(T);
  const double* p = s.data_ptr<double>();
  const double log_m = std::log(double(M));
  double total = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const double* row = p + t * M;
    double sum = 0.0, h = 0.0;
    for (int64_t i = 0; i < M; ++i) sum += row[i];
    if (sum <= 0.0) continue;
    for (int64_t i = 0; i < M; ++i) {
      const double q = row[i] / sum;
      if (q > 0.0) h -= q * std::log(q);
    }
    total += h / log_m;
  }
  return total;
}

}  // namespace

ForwardResult forward(const ModelConfig& c, const ParamStore& params, const at::Tensor& tokens,
                      const RouteControl& control) {
  const int64_t B = tokens.size(0), S = tokens.size(1), T = B * S, d = c.d_model;
  const int64_t H = c.n_heads, KV = c.n_kv_heads, hd = c.head_dim(), Mg = c.experts_per_group;
  const at::Tensor& embed = params.get("embed.weight");
  const auto [cos, sin] = rope_tables(S, hd, c.rope_theta, embed.scalar_type());
  const at::Tensor &w_gate = params.get("pool.w_gate"), &w_up = params.get("pool.w_up"),
                   &w_down = params.get("pool.w_down");

  ForwardResult out;
  std::vector<at::Tensor> f, P;  // (Mg) each: choice fractions and mean scores per layer
  at::Tensor z_total = at::zeros({}, embed.options());
  at::Tensor x = at::embedding(embed, tokens);  // (B, S, d)
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    // Attention block.
    const at::Tensor h = rms_norm(x, params.get(p + "attn_norm.weight"), c.norm_eps).view({T, d});
    const int64_t rep = H / KV;
    const at::Tensor q = rope_grouped(
        at::mm(h, params.get(p + "attn.q_proj.weight").t()).view({B, S, H, hd}), cos, sin,
        rep);  // (B, KV, S, rep, hd)
    const at::Tensor k =
        rope_grouped(at::mm(h, params.get(p + "attn.k_proj.weight").t()).view({B, S, KV, hd}), cos,
                     sin, 1)
            .view({B, KV, S, hd});
    const at::Tensor v = at::mm(h, params.get(p + "attn.v_proj.weight").t())
                             .view({B, S, KV, hd})
                             .transpose(1, 2);  // (B, KV, S, hd)
    const at::Tensor a =  // (B, KV, S, rep, hd) -> (T, H*hd) with head j = kv * rep + r
        causal_gqa_attention_grouped(q, k, v).permute({0, 2, 1, 3, 4}).reshape({T, H * hd});
    x = x + at::mm(a, params.get(p + "attn.o_proj.weight").t()).view({B, S, d});

    // MoE block.
    const at::Tensor hf = rms_norm(x, params.get(p + "ffn_norm.weight"), c.norm_eps).view({T, d});
    const bool random = !control.random_layers.empty() && control.random_layers[size_t(l)];
    const at::Tensor scale = c.router == "norm" ? params.get(p + "router.scale") : at::Tensor();
    RouterOutput r = route_tokens(c, hf, params.get(p + "router.weight"), scale, random,
                                  hash_u64(control.random_seed, uint64_t(l)));
    const at::Tensor global_ids = r.local + int64_t(c.group_of_layer(l)) * Mg;
    x = x + dispatch_experts(hf, global_ids, r.gates, w_gate, w_up, w_down,
                             control.accumulate_pool_grads)
                .view({B, S, d});

    LayerRoute route;
    route.local = r.local;
    route.gates = r.gates.detach();
    route.counts.assign(size_t(Mg), 0);
    const int64_t* lp = r.local.data_ptr<int64_t>();
    for (int64_t i = 0; i < r.local.numel(); ++i) ++route.counts[size_t(lp[i])];
    if (control.with_entropy) {
      const auto start = std::chrono::steady_clock::now();
      route.entropy_sum = router_entropy_sum(r.scores);
      out.stats_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    if (c.balance != "none") {
      std::vector<double> fraction(static_cast<size_t>(Mg));  // counts are constants: no gradient
      for (size_t i = 0; i < fraction.size(); ++i)
        fraction[i] = double(route.counts[i]) / double(T * c.top_k);
      f.push_back(
          at::tensor(fraction, at::TensorOptions().dtype(at::kDouble)).to(embed.scalar_type()));
      P.push_back(r.scores.mean(0));
    }
    if (c.z_coef > 0.0) z_total = z_total + r.logits.logsumexp(1).pow(2).mean();
    out.routes.push_back(std::move(route));
  }
  const at::Tensor hn = rms_norm(x, params.get("final_norm.weight"), c.norm_eps).view({T, d});
  out.logits = at::mm(hn, params.get("lm_head.weight").t()).view({B, S, c.vocab_size});
  out.aux = c.balance == "none" ? at::zeros({}, embed.options()) : balance_loss(c, f, P);
  out.z_loss = z_total * (c.z_coef / double(c.n_layers));
  return out;
}

}  // namespace unipool
