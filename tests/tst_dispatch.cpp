// MoE dispatch and expert ownership (SPEC sections 1-3), and forward() against a straightforward
// reference model written here in double precision from the SPEC text.
#include <torch/torch.h>

#include <QtTest>
#include <cmath>
#include <set>

#include "internal_util.h"
#include "unipool/engine.h"

using namespace testutil;
using unipool::ModelConfig;

namespace {

at::Tensor expert_dense(const at::Tensor& x, const at::Tensor& wg, const at::Tensor& wu,
                        const at::Tensor& wd, int64_t e) {
  return at::mm(at::silu(at::mm(x, wg[e].t())) * at::mm(x, wu[e].t()), wd[e].t());
}

at::Tensor rms(const at::Tensor& x, const at::Tensor& w, double eps) {
  return x / at::sqrt(x.pow(2).mean(-1, true) + eps) * w;
}

struct RefOut {
  at::Tensor logits;
  double aux = 0, z = 0;
  std::vector<std::vector<int64_t>> local;  // (L) x (T*k)
  std::vector<std::vector<double>> gates;
};

// SPEC sections 2-4, one piece at a time, no engine code: learned routing only.
RefOut reference_forward(const ModelConfig& c, const unipool::ParamStore& p,
                         const at::Tensor& tokens) {
  torch::NoGradGuard no_grad;
  const int64_t B = tokens.size(0), S = tokens.size(1), T = B * S, d = c.d_model;
  const int64_t H = c.n_heads, KV = c.n_kv_heads, hd = d / H, Mg = c.experts_per_group, k = c.top_k;
  const int L = c.n_layers, G = c.layers_per_group;
  auto P = [&](const std::string& n) { return p.get(n).detach(); };
  // RoPE tables: angle = pos * theta^(-2i/hd), repeated over both halves.
  at::Tensor cos = at::empty({S, 1, hd}, kF64), sin = at::empty({S, 1, hd}, kF64);
  for (int64_t s = 0; s < S; ++s)
    for (int64_t i = 0; i < hd; ++i) {
      const double a = double(s) * std::pow(c.rope_theta, -2.0 * double(i % (hd / 2)) / double(hd));
      cos[s][0][i] = std::cos(a);
      sin[s][0][i] = std::sin(a);
    }
  auto rope = [&](const at::Tensor& x) {  // x: (B, S, heads, hd)
    const at::Tensor rot = at::cat({-x.narrow(3, hd / 2, hd / 2), x.narrow(3, 0, hd / 2)}, 3);
    return x * cos + rot * sin;
  };
  const at::Tensor mask = at::ones({S, S}, at::TensorOptions().dtype(at::kBool)).triu(1);
  at::Tensor x = P("embed.weight").index_select(0, tokens.reshape(-1)).view({B, S, d});
  RefOut out;
  std::vector<std::vector<double>> f(static_cast<size_t>(L)), Pm(static_cast<size_t>(L));
  double z_sum = 0;
  for (int l = 0; l < L; ++l) {
    const std::string pre = "layers." + std::to_string(l) + ".";
    const at::Tensor h = rms(x, P(pre + "attn_norm.weight"), c.norm_eps);
    const at::Tensor q = rope(at::matmul(h, P(pre + "attn.q_proj.weight").t()).view({B, S, H, hd}));
    const at::Tensor kk =
        rope(at::matmul(h, P(pre + "attn.k_proj.weight").t()).view({B, S, KV, hd}));
    const at::Tensor v = at::matmul(h, P(pre + "attn.v_proj.weight").t()).view({B, S, KV, hd});
    std::vector<at::Tensor> heads;
    for (int64_t j = 0; j < H; ++j) {
      const int64_t g = j / (H / KV);
      const at::Tensor qj = q.select(2, j), kj = kk.select(2, g),
                       vj = v.select(2, g);                                     // (B, S, hd)
      at::Tensor sc = at::bmm(qj, kj.transpose(1, 2)) / std::sqrt(double(hd));  // (B, S, S)
      heads.push_back(at::bmm(at::softmax(sc.masked_fill(mask, -INFINITY), -1), vj));
    }
    x = x + at::matmul(at::cat(heads, 2), P(pre + "attn.o_proj.weight").t());

    const at::Tensor hf = rms(x, P(pre + "ffn_norm.weight"), c.norm_eps).reshape({T, d});
    const at::Tensor z = at::mm(hf, P(pre + "router.weight").t());  // (T, Mg)
    const auto zv = to_vec(z);
    const double scale = c.router == "norm" ? P(pre + "router.scale").item<double>() : 1.0;
    at::Tensor moe = at::zeros({T, d}, kF64);
    std::vector<double> counts(size_t(Mg), 0.0), mean_s(size_t(Mg), 0.0);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> zt(zv.begin() + t * Mg, zv.begin() + (t + 1) * Mg),
          s(static_cast<size_t>(Mg));
      double n2 = 0, mx = -1e300, se = 0;
      for (double e : zt) n2 += e * e, mx = std::max(mx, e);
      for (double e : zt) se += std::exp(e - mx);
      z_sum += std::pow(mx + std::log(se), 2) / double(T) / L;
      for (int64_t i = 0; i < Mg; ++i)
        s[size_t(i)] =
            c.router == "norm"
                ? scale * c.router_c * std::max(0.0, zt[size_t(i)] / (std::sqrt(n2) + 1e-8))
                : std::exp(zt[size_t(i)] - mx) / se;
      const std::vector<int64_t> top = naive_topk(s, int(k));
      double sel = 0;
      for (int64_t e : top) sel += s[size_t(e)];
      for (int64_t j = 0; j < k; ++j) {
        const int64_t e = top[size_t(j)];
        const double gate =
            c.renormalize_gates ? (sel > 0 ? s[size_t(e)] / sel : 0.0) : s[size_t(e)];
        const int64_t global = int64_t(l / G) * Mg + e;
        moe[t] += gate * expert_dense(hf[t].unsqueeze(0), P("pool.w_gate"), P("pool.w_up"),
                                      P("pool.w_down"), global)[0];
        out.local.resize(size_t(L));
        out.gates.resize(size_t(L));
        out.local[size_t(l)].push_back(e);
        out.gates[size_t(l)].push_back(gate);
        counts[size_t(e)] += 1;
      }
      for (int64_t i = 0; i < Mg; ++i) mean_s[size_t(i)] += s[size_t(i)] / double(T);
    }
    for (double& e : counts) e /= double(T * k);
    f[size_t(l)] = counts;
    Pm[size_t(l)] = mean_s;
    x = x + moe.view({B, S, d});
  }
  out.logits = at::matmul(rms(x, P("final_norm.weight"), c.norm_eps), P("lm_head.weight").t());
  if (c.balance == "layer") {
    for (int l = 0; l < L; ++l)
      for (int64_t i = 0; i < Mg; ++i)
        out.aux += c.aux_coef * Mg * f[size_t(l)][size_t(i)] * Pm[size_t(l)][size_t(i)];
  } else if (c.balance == "pool") {
    const int groups = L / G;
    for (int g = 0; g < groups; ++g)
      for (int64_t i = 0; i < Mg; ++i) {
        double fb = 0, pb = 0;
        for (int j = 0; j < G; ++j)
          fb += f[size_t(g * G + j)][size_t(i)] / G, pb += Pm[size_t(g * G + j)][size_t(i)] / G;
        out.aux += c.aux_coef * Mg * fb * pb;  // summed over groups (SPEC 4)
      }
  }
  out.z = c.z_coef * z_sum;
  return out;
}

ModelConfig layout(int L, int G, int Mg, int k, const char* router) {
  ModelConfig c = small_config();
  c.d_model = 16;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.n_layers = L;
  c.layers_per_group = G;
  c.experts_per_group = Mg;
  c.top_k = k;
  c.router = router;
  c.balance = std::string(router) == "norm" ? "pool" : "layer";
  return finish(c);
}

at::Tensor some_tokens(int64_t B, int64_t S, uint64_t seed) {
  return at::randint(0, 256, {B, S}, at::make_generator<at::CPUGeneratorImpl>(seed),
                     at::TensorOptions().dtype(at::kLong));
}

}  // namespace

class TestDispatch : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { unipool::set_compute_threads(1); }

  void dispatchEqualsDense() {
    const int64_t T = 10, d = 6, h = 4, N = 5;
    const at::Tensor wg = randn({N, h, d}, 1), wu = randn({N, h, d}, 2), wd = randn({N, d, h}, 3);
    const at::Tensor x = randn({T, d}, 4);
    // Top-1 over {0, 1, 3}; top-2 pairs over {0, 1, 2, 4}: some experts get no token.
    const std::vector<std::vector<int64_t>> id_sets = {
        {0, 1, 3, 3, 0, 1, 1, 3, 0, 0},
        {0, 1, 1, 0, 2, 4, 4, 2, 0, 4, 1, 2, 2, 1, 4, 0, 0, 2, 1, 4}};
    for (const auto& idv : id_sets) {
      const int64_t k = int64_t(idv.size()) / T;
      const at::Tensor ids = at::tensor(idv, at::TensorOptions().dtype(at::kLong)).view({T, k});
      const at::Tensor gates = randn({T, k}, 5 + k).abs();
      std::vector<at::Tensor> in = {x, gates, wg, wu, wd}, ref_in;
      for (auto& t : in) {
        ref_in.push_back(t.clone().requires_grad_(true));
        t = t.clone().requires_grad_(true);
      }
      const at::Tensor out = unipool::dispatch_experts(in[0], ids, in[1], in[2], in[3], in[4]);
      // Dense: every expert on every token, combined with the gate mask (T, N).
      at::Tensor mask = at::zeros({T, N}, kF64);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < k; ++j) mask[t][idv[size_t(t * k + j)]] = 1.0;
      at::Tensor dense = at::zeros({T, d}, kF64);
      for (int64_t e = 0; e < N; ++e) {
        // gate of expert e per token: sum over the token's choices naming e
        const at::Tensor g = (ref_in[1] * ids.eq(e).to(at::kDouble)).sum(1, true);
        dense = dense + g * expert_dense(ref_in[0], ref_in[2], ref_in[3], ref_in[4], e);
      }
      QVERIFY(max_rel_diff(out, dense) < 1e-13);
      // Gradients agree too (the unused experts get exactly zero).
      const at::Tensor R = randn({T, d}, 9);
      (out * R).sum().backward();
      (dense * R).sum().backward();
      for (size_t i = 0; i < in.size(); ++i)
        QVERIFY2(max_rel_diff(in[i].grad(), ref_in[i].grad()) < 1e-12,
                 qPrintable(QString::number(i)));
      for (int64_t e = 0; e < N; ++e) {
        if (mask.select(1, e).sum().item<double>() == 0)
          QCOMPARE(in[2].grad()[e].abs().sum().item<double>(), 0.0);
      }
    }
  }

  void groupOwnership() {
    // vanilla (G=1), grouped (G=2), UniPool (G=L): layer l names only global experts of g(l).
    const std::vector<ModelConfig> configs = {
        layout(3, 1, 3, 2, "softmax"), layout(4, 2, 3, 2, "norm"), layout(3, 3, 5, 2, "norm")};
    for (const ModelConfig& c : configs) {
      unipool::ParamStore p = lively_params(c, 3);
      const at::Tensor tokens = some_tokens(2, 12, 8);
      torch::NoGradGuard no_grad;
      const unipool::ForwardResult base = unipool::forward(c, p, tokens, {});
      const int Mg = c.experts_per_group, G = c.layers_per_group;
      for (int l = 0; l < c.n_layers; ++l) {
        const auto local = to_ivec(base.routes[size_t(l)].local);
        std::set<int64_t> seen;
        for (int64_t e : local) {
          QVERIFY(e >= 0 && e < Mg);
          seen.insert(e);
        }
        QVERIFY(seen.size() >= 2);  // the check is not vacuous
      }
      // Changing the experts of group g leaves every layer before group g, and the routing of
      // g's first layer, untouched, but does change the output: the layers of g use them.
      for (int g = 0; g < c.n_groups(); ++g) {
        unipool::ParamStore q = lively_params(c, 3);
        for (const char* w : {"pool.w_gate", "pool.w_up", "pool.w_down"})
          q.get(w)
              .narrow(0, int64_t(g) * Mg, Mg)
              .add_(randn(q.get(w).narrow(0, 0, Mg).sizes(), 50 + g));
        const unipool::ForwardResult out = unipool::forward(c, q, tokens, {});
        for (int l = 0; l <= g * G; ++l)
          QVERIFY(at::equal(out.routes[size_t(l)].local, base.routes[size_t(l)].local));
        QVERIFY(!at::allclose(out.logits, base.logits));
      }
    }
  }

  void denseGatesAreOne() {
    ModelConfig c = layout(2, 1, 1, 1, "softmax");
    c.balance = "none";
    c.aux_coef = 0.0;
    const unipool::ParamStore p = lively_params(c, 4);
    torch::NoGradGuard no_grad;
    const unipool::ForwardResult out = unipool::forward(c, p, some_tokens(2, 7, 2), {});
    for (const auto& r : out.routes) {
      QVERIFY(at::equal(r.gates, at::ones_like(r.gates)));
      QVERIFY(at::equal(r.local, at::zeros_like(r.local)));
      QCOMPARE(r.counts, std::vector<int64_t>{14});
    }
    QCOMPARE(out.aux.item<double>(), 0.0);
  }

  void referenceModel() {
    struct Case {
      const char* name;
      ModelConfig c;
    };
    std::vector<Case> cases = {{"unipool", layout(3, 3, 5, 2, "norm")},
                               {"vanilla", layout(3, 1, 4, 2, "softmax")},
                               {"grouped", layout(6, 2, 3, 1, "norm")},  // three pools
                               {"dense", layout(2, 1, 1, 1, "softmax")}};
    cases[0].c.z_coef = 0.01;
    cases[1].c.renormalize_gates = true;
    cases[1].c.z_coef = 0.02;
    cases[2].c.aux_coef = 0.1;
    for (const Case& k : cases) {
      const ModelConfig& c = k.c;
      const unipool::ParamStore p = lively_params(c, 11);
      const at::Tensor tokens = some_tokens(2, 6, 12);
      torch::NoGradGuard no_grad;
      const unipool::ForwardResult out = unipool::forward(c, p, tokens, {});
      const RefOut ref = reference_forward(c, p, tokens);
      QVERIFY2(max_rel_diff(out.logits, ref.logits) < 1e-10,
               qPrintable(QString("%1: %2").arg(k.name).arg(max_rel_diff(out.logits, ref.logits))));
      QVERIFY2(std::abs(out.aux.item<double>() - ref.aux) < 1e-12 * std::max(1.0, ref.aux), k.name);
      QVERIFY2(std::abs(out.z_loss.item<double>() - ref.z) < 1e-12 * std::max(1.0, ref.z), k.name);
      for (int l = 0; l < c.n_layers; ++l) {
        QVERIFY2(to_ivec(out.routes[size_t(l)].local) == ref.local[size_t(l)], k.name);
        const auto g = to_vec(out.routes[size_t(l)].gates);
        for (size_t i = 0; i < g.size(); ++i)
          QVERIFY(std::abs(g[i] - ref.gates[size_t(l)][i]) < 1e-12);
      }
      if (c.z_coef > 0) QVERIFY(ref.z > 0);
      if (c.balance != "none" && c.aux_coef > 0) QVERIFY(ref.aux > 0);
    }
  }
};

QTEST_APPLESS_MAIN(TestDispatch)
#include "tst_dispatch.moc"
