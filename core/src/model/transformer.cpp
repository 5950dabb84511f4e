// The forward pass (SPEC section 2): attention and MoE blocks layer by layer, routing on the
// way (section 3), the balance and z losses (section 4).
#include "model/transformer.h"

#include <chrono>
#include <cmath>

#include "model/backend.h"
#include "model/losses.h"
#include "model/param_names.h"
#include "model/rope.h"
#include "model/router.h"
#include "unipool/random.h"

namespace unipool {

namespace {

// One collective for the whole forward: every layer's counts and, in a lock run, every
// layer's mean scores, summed over the ranks in one float64 tensor (counts are exact in it).
// A mean p becomes p_local + (p_global - p_local).detach(): the global batch's value, and a
// gradient through this rank's tokens that the gradient average over ranks completes.
void reduce_over_ranks(const RouteControl& control, std::vector<LayerRoute>& routes,
                       std::vector<at::Tensor>& mean_p) {
  std::vector<double> packed;
  for (const LayerRoute& r : routes) packed.insert(packed.end(), r.counts.begin(), r.counts.end());
  std::vector<at::Tensor> host_p;
  for (const at::Tensor& p : mean_p) {
    host_p.push_back(p.detach().to(at::kCPU, at::kDouble).contiguous());
    packed.insert(packed.end(), host_p.back().data_ptr<double>(),
                  host_p.back().data_ptr<double>() + host_p.back().numel());
  }
  at::Tensor sums = at::tensor(packed, at::TensorOptions().dtype(at::kDouble));
  control.reduce_sum(sums);
  const double* s = sums.data_ptr<double>();
  for (LayerRoute& r : routes)
    for (int64_t& n : r.counts) n = int64_t(std::llround(*s++));
  for (size_t l = 0; l < mean_p.size(); ++l) {
    const int64_t n = mean_p[l].numel();
    const at::Tensor global =
        (sums.narrow(0, s - sums.data_ptr<double>(), n) / double(control.world_size))
            .to(mean_p[l].device(), mean_p[l].scalar_type());
    s += n;
    mean_p[l] = mean_p[l] + (global - mean_p[l]).detach();
  }
}

}  // namespace

ForwardResult forward(const ModelConfig& c, const ParamStore& params, const at::Tensor& tokens_in,
                      const RouteControl& control) {
  const int64_t B = tokens_in.size(0), S = tokens_in.size(1), T = B * S, d = c.d_model;
  const int64_t H = c.n_heads, KV = c.n_kv_heads, hd = c.head_dim(), Mg = c.experts_per_group;
  const StepBackend& ops = control.backend ? *control.backend : fused_cpu_backend();
  const at::Tensor& embed = params.get(param_names::kEmbed);
  const at::Tensor tokens = tokens_in.to(embed.device());  // batches are drawn on the host
  auto [cos_cpu, sin_cpu] = rope_tables(S, hd, c.rope_theta, embed.scalar_type());
  const at::Tensor cos = cos_cpu.to(embed.device()), sin = sin_cpu.to(embed.device());
  const at::Tensor &w_gate = params.get(param_names::kPoolGate),
                   &w_up = params.get(param_names::kPoolUp),
                   &w_down = params.get(param_names::kPoolDown);

  ForwardResult out;
  std::vector<at::Tensor> f, P;    // (Mg) each: choice fractions and mean scores per layer
  std::vector<at::Tensor> mean_p;  // lock runs: each layer's mean score distribution
  at::Tensor z_total = at::zeros({}, embed.options());
  at::Tensor x = at::embedding(embed, tokens);  // (B, S, d)
  for (int l = 0; l < c.n_layers; ++l) {
    // Attention block.
    const at::Tensor h =
        ops.rms_norm(x, params.get(param_names::attn_norm(l)), c.norm_eps).view({T, d});
    const int64_t rep = H / KV;
    const at::Tensor q = ops.rope_grouped(
        ops.linear(h, params.get(param_names::q_proj(l))).view({B, S, H, hd}), cos, sin,
        rep);  // (B, KV, S, rep, hd)
    const at::Tensor k =
        ops.rope_grouped(ops.linear(h, params.get(param_names::k_proj(l))).view({B, S, KV, hd}),
                         cos, sin, 1)
            .view({B, KV, S, hd});
    const at::Tensor v = ops.linear(h, params.get(param_names::v_proj(l)))
                             .view({B, S, KV, hd})
                             .transpose(1, 2);  // (B, KV, S, hd)
    const at::Tensor a =  // (B, KV, S, rep, hd) -> (T, H*hd) with head j = kv * rep + r
        ops.attention_grouped(q, k, v).permute({0, 2, 1, 3, 4}).reshape({T, H * hd});
    x = x + ops.linear(a, params.get(param_names::o_proj(l))).view({B, S, d});

    // MoE block.
    const at::Tensor hf =
        ops.rms_norm(x, params.get(param_names::ffn_norm(l)), c.norm_eps).view({T, d});
    const bool random = !control.random_layers.empty() && control.random_layers[size_t(l)];
    const at::Tensor scale =
        c.router == "norm" ? params.get(param_names::router_scale(l)) : at::Tensor();
    LayerLock lock;
    if (control.owned) {
      lock.owned = &(*control.owned)[size_t(l)];
      lock.alpha = control.lock_alpha;
    }
    RouterOutput r =
        route_tokens(ops, c, hf, params.get(param_names::router_weight(l)), scale, random,
                     hash_u64(control.random_seed, uint64_t(l)), lock, control.first_token);
    const at::Tensor global_ids = r.local + int64_t(c.group_of_layer(l)) * Mg;
    x = x + ops.moe(hf, global_ids, r.gates, w_gate, w_up, w_down, control.accumulate_pool_grads)
                .view({B, S, d});

    // The statistics are the host's: on a GPU this copy is the step's one synchronisation.
    LayerRoute route;
    route.local = r.local.to(at::kCPU);
    route.gates = r.gates.detach().to(at::kCPU);
    route.counts.assign(size_t(Mg), 0);
    const int64_t* lp = route.local.data_ptr<int64_t>();
    for (int64_t i = 0; i < r.local.numel(); ++i) ++route.counts[size_t(lp[i])];
    if (control.with_entropy) {
      const auto start = std::chrono::steady_clock::now();
      route.entropy_sum = router_entropy_sum(r.scores);
      out.stats_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    // The balance loss's P and SPEC 8.1's entropy term share the layer's mean (faded) scores;
    // gradients flow through the dense scores, not through top-k.
    const bool entropy = control.entropy_coef > 0.0;
    const at::Tensor mean_score =  // (Mg), or (K) locked
        c.balance != "none" || entropy ? r.scores.mean(0) : at::Tensor();
    if (c.balance != "none") P.push_back(pool_mean_scores(r, mean_score, c.experts_per_group));
    if (c.z_coef > 0.0) z_total = z_total + r.logits.logsumexp(1).pow(2).mean();
    if (entropy) mean_p.push_back(mean_score);
    out.routes.push_back(std::move(route));
  }
  if (control.reduce_sum) reduce_over_ranks(control, out.routes, mean_p);
  if (c.balance != "none") {
    for (const LayerRoute& route : out.routes) {
      std::vector<double> fraction(static_cast<size_t>(Mg));  // counts are constants: no gradient
      int64_t choices = 0;                                    // T * top_k, over every rank's tokens
      for (int64_t n : route.counts) choices += n;
      for (size_t i = 0; i < fraction.size(); ++i)
        fraction[i] = double(route.counts[i]) / double(std::max<int64_t>(choices, 1));
      f.push_back(at::tensor(fraction, at::TensorOptions().dtype(at::kDouble))
                      .to(embed.device(), embed.scalar_type()));
    }
  }
  const at::Tensor hn =
      ops.rms_norm(x, params.get(param_names::kFinalNorm), c.norm_eps).view({T, d});
  out.logits = ops.linear(hn, params.get(param_names::kLmHead)).view({B, S, c.vocab_size});
  out.aux = c.balance == "none" ? at::zeros({}, embed.options()) : balance_loss(c, f, P);
  out.z_loss = z_total * (c.z_coef / double(c.n_layers));
  // Only lock runs have the term: other runs' loss keeps its plain graph.
  if (control.entropy_coef > 0.0)  // each layer pulled towards ln K
    out.entropy_loss = target_entropy_loss(mean_p, control.entropy_target) *
                       (control.entropy_coef / double(c.n_layers));
  return out;
}

}  // namespace unipool
