// The forward-pass formulas of SPEC sections 2-4 and the evaluation contract of section 7,
// each against naive loops in double precision written from the SPEC text.
#include <torch/torch.h>

#include <QtTest>
#include <cmath>

#include "internal_util.h"
#include "model/blas_gemm.h"
#include "model/norm_router.h"
#include "unipool/corpus.h"
#include "unipool/engine.h"

using namespace testutil;
using unipool::ModelConfig;

namespace {

// NormRouter or softmax scores of one token, from SPEC section 3.
std::vector<double> naive_scores(const ModelConfig& c, const std::vector<double>& z, double scale) {
  std::vector<double> s(z.size());
  if (c.router == "norm") {
    double n2 = 0;
    for (double v : z) n2 += v * v;
    for (size_t i = 0; i < z.size(); ++i)
      s[i] = scale * c.router_c * std::max(0.0, z[i] / (std::sqrt(n2) + 1e-8));
  } else {
    double mx = *std::max_element(z.begin(), z.end()), sum = 0;
    for (size_t i = 0; i < z.size(); ++i) sum += std::exp(z[i] - mx);
    for (size_t i = 0; i < z.size(); ++i) s[i] = std::exp(z[i] - mx) / sum;
  }
  return s;
}

// Checks route_tokens (learned routing) against loops; returns how many tokens had fewer than
// top_k positive scores (ties at zero, resolved by the lowest index).
int check_router(const ModelConfig& c, int64_t T, uint64_t seed) {
  const int64_t d = c.d_model, Mg = c.experts_per_group, k = c.top_k;
  at::Tensor x = randn({T, d}, seed);
  x[3].zero_();  // z = 0: every NormRouter score is 0, the gates must be 0 (not NaN)
  const at::Tensor W = randn({Mg, d}, seed + 1);
  const double scale = 1.3;
  const at::Tensor scale_t = at::full({1}, scale, kF64);
  const unipool::RouterOutput r = unipool::route_tokens(c, x, W, scale_t, false, 0);
  const auto xv = to_vec(x), wv = to_vec(W), lz = to_vec(r.logits), ls = to_vec(r.scores);
  const auto local = to_ivec(r.local);
  const auto gates = to_vec(r.gates);
  int ties = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> z(size_t(Mg), 0.0);
    for (int64_t i = 0; i < Mg; ++i)
      for (int64_t j = 0; j < d; ++j) z[size_t(i)] += wv[size_t(i * d + j)] * xv[size_t(t * d + j)];
    const std::vector<double> s = naive_scores(c, z, scale);
    int positive = 0;
    for (int64_t i = 0; i < Mg; ++i) {
      if (std::abs(lz[size_t(t * Mg + i)] - z[size_t(i)]) > 1e-12) return -1;
      if (std::abs(ls[size_t(t * Mg + i)] - s[size_t(i)]) > 1e-12) return -2;
      positive += s[size_t(i)] > 0;
    }
    if (positive < k) ++ties;
    const std::vector<int64_t> top = naive_topk(s, int(k));
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += s[size_t(top[size_t(j)])];
    for (int64_t j = 0; j < k; ++j) {
      if (local[size_t(t * k + j)] != top[size_t(j)]) return -3;
      double g = s[size_t(top[size_t(j)])];
      if (c.renormalize_gates) g = sum > 0 ? g / sum : 0.0;
      if (!(std::abs(gates[size_t(t * k + j)] - g) <= 1e-12)) return -4;
    }
  }
  return ties;
}

double naive_rms(const std::vector<double>& x, size_t off, size_t d, size_t i,
                 const std::vector<double>& w, double eps) {
  double ss = 0;
  for (size_t j = 0; j < d; ++j) ss += x[off + j] * x[off + j];
  return x[off + i] / std::sqrt(ss / double(d) + eps) * w[i];
}

}  // namespace

class TestFormulas : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { unipool::set_compute_threads(1); }

  void normRouter() {
    for (bool renorm : {false, true}) {
      for (int k : {1, 2, 3}) {
        ModelConfig c = small_config();
        c.experts_per_group = 6;
        c.top_k = k;
        c.renormalize_gates = renorm;
        c = finish(c);
        const int ties = check_router(c, 400, 10 + k);
        QVERIFY2(ties >= 0, qPrintable(QString("mismatch code %1, k %2").arg(ties).arg(k)));
        if (k >= 2) QVERIFY(ties >= 2);  // the zero-score tie path was exercised
      }
    }
  }

  void softmaxRouter() {
    for (bool renorm : {false, true}) {
      ModelConfig c = small_config();
      c.router = "softmax";
      c.experts_per_group = 5;
      c.top_k = 2;
      c.renormalize_gates = renorm;
      c = finish(c);
      QCOMPARE(check_router(c, 200, 77), 0);
    }
  }

  void topKTies() {
    for (auto dtype : {at::kFloat, at::kDouble}) {
      const at::Tensor s = at::tensor({1.0, 3.0, 3.0, 2.0,  //
                                       0.0, 0.0, 0.0, 0.0,  //
                                       5.0, 1.0, 5.0, 5.0,  //
                                       -1.0, -1.0, 2.0, -1.0},
                                      kF64)
                               .view({4, 4})
                               .to(dtype);
      QCOMPARE(to_ivec(unipool::top_k_lowest_index(s, 2)),
               (std::vector<int64_t>{1, 2, 0, 1, 0, 2, 2, 0}));
      QCOMPARE(to_ivec(unipool::top_k_lowest_index(s, 1)), (std::vector<int64_t>{1, 0, 0, 2}));
      QCOMPARE(to_ivec(unipool::top_k_lowest_index(s, 4)),
               (std::vector<int64_t>{1, 2, 3, 0, 0, 1, 2, 3, 0, 2, 3, 1, 2, 0, 1, 3}));
    }
    // Many random rows with few distinct values (ties everywhere) against a stable sort.
    const at::Tensor s = (randn({300, 7}, 5) * 1.5).round();
    for (int k = 1; k <= 7; ++k) {
      const auto got = to_ivec(unipool::top_k_lowest_index(s, k));
      const auto v = to_vec(s);
      for (int64_t t = 0; t < 300; ++t) {
        const auto want =
            naive_topk(std::vector<double>(v.begin() + t * 7, v.begin() + t * 7 + 7), k);
        for (int j = 0; j < k; ++j) QCOMPARE(got[size_t(t * k + j)], want[size_t(j)]);
      }
    }
  }

  void randomRouting() {
    for (int k : {1, 2, 3}) {
      for (bool renorm : {false, true}) {
        ModelConfig c = small_config();
        c.experts_per_group = 6;
        c.top_k = k;
        c.renormalize_gates = renorm;
        c = finish(c);
        const int64_t T = 3000, Mg = 6;
        const at::Tensor x = randn({T, c.d_model}, 21), W = randn({Mg, c.d_model}, 22);
        const at::Tensor scale = at::full({1}, 0.9, kF64);
        const auto learned = unipool::route_tokens(c, x, W, scale, false, 0);
        const auto r = unipool::route_tokens(c, x, W, scale, true, 1234);
        const auto local = to_ivec(r.local), top = to_ivec(learned.local);
        const auto gates = to_vec(r.gates), lg = to_vec(learned.gates);
        std::vector<std::vector<double>> counts(size_t(k), std::vector<double>(Mg, 0.0));
        int64_t same_as_learned = 0;
        for (int64_t t = 0; t < T; ++t) {
          double sum = 0;
          for (int j = 0; j < k; ++j) sum += lg[size_t(t * k + j)];
          for (int j = 0; j < k; ++j) {
            const int64_t e = local[size_t(t * k + j)];
            QVERIFY(e >= 0 && e < Mg);
            for (int i = 0; i < j; ++i) QVERIFY(local[size_t(t * k + i)] != e);  // distinct
            QVERIFY(std::abs(gates[size_t(t * k + j)] - sum / k) < 1e-14);
            ++counts[size_t(j)][size_t(e)];
          }
          same_as_learned += local[size_t(t * k)] == top[size_t(t * k)];
        }
        // Each choice position is uniform over the group: chi-square, 5 degrees of freedom,
        // 30 is beyond the 0.9999 quantile (about 25.7).
        for (int j = 0; j < k; ++j) {
          double chi2 = 0;
          for (double o : counts[size_t(j)]) chi2 += (o - T / 6.0) * (o - T / 6.0) / (T / 6.0);
          QVERIFY2(chi2 < 30.0, qPrintable(QString("chi2 %1").arg(chi2)));
        }
        // The random choice ignores the scores: it agrees with the learned top-1 about 1/Mg of
        // the time (500 of 3000; 3 sigma is about 60).
        QVERIFY2(std::abs(double(same_as_learned) - T / 6.0) < 100,
                 qPrintable(QString::number(same_as_learned)));
        // Deterministic for a seed, different for another.
        QVERIFY(at::equal(unipool::route_tokens(c, x, W, scale, true, 1234).local, r.local));
        QVERIFY(!at::equal(unipool::route_tokens(c, x, W, scale, true, 1235).local, r.local));
        if (renorm) QVERIFY(std::abs(gates[0] - 1.0 / k) < 1e-14);  // renormalised gates sum to 1
      }
    }
  }

  void balanceLoss() {
    ModelConfig c = small_config();
    c.n_layers = 4;
    c.layers_per_group = 2;
    c.experts_per_group = 3;
    c.aux_coef = 0.05;
    c = finish(c);
    const int L = 4, Mg = 3;
    std::vector<at::Tensor> f, P;
    std::vector<std::vector<double>> fv, pv;
    for (int l = 0; l < L; ++l) {
      const at::Tensor a = randn({Mg}, 40 + l).abs() + 0.1;
      f.push_back(a / a.sum());
      P.push_back((randn({Mg}, 50 + l).abs() * 2.0).requires_grad_(true));
      fv.push_back(to_vec(f.back()));
      pv.push_back(to_vec(P.back()));
    }
    // Pool: mean of f and P over each group's layers, Mg * <fbar, Pbar>, summed over groups.
    double pool = 0;
    for (int g = 0; g < 2; ++g) {
      double term = 0;
      for (int i = 0; i < Mg; ++i)
        term += (fv[g * 2][i] + fv[g * 2 + 1][i]) / 2 * (pv[g * 2][i] + pv[g * 2 + 1][i]) / 2;
      pool += Mg * term;
    }
    at::Tensor aux = unipool::balance_loss(c, f, P);
    QVERIFY(std::abs(aux.item<double>() - 0.05 * pool) < 1e-14);
    aux.backward();  // d aux / d P[l][i] = coef * Mg * fbar_i / G
    for (int l = 0; l < L; ++l)
      for (int i = 0; i < Mg; ++i) {
        const double fbar = (fv[l / 2 * 2][i] + fv[l / 2 * 2 + 1][i]) / 2;
        QVERIFY(std::abs(P[l].grad()[i].item<double>() - 0.05 * Mg * fbar / 2) < 1e-14);
      }
    c.balance = "layer";
    double layer = 0;
    for (int l = 0; l < L; ++l)
      for (int i = 0; i < Mg; ++i) layer += Mg * fv[l][i] * pv[l][i];  // summed: no / L
    QVERIFY(std::abs(unipool::balance_loss(c, f, P).item<double>() - 0.05 * layer) < 1e-14);
    c.balance = "none";
    QCOMPARE(unipool::balance_loss(c, f, P).item<double>(), 0.0);
    // Uniform softmax scores at perfect balance: each layer's (pool's) term equals aux_coef
    // (SPEC section 4), so the sum is L (or n_groups) times it.
    const std::vector<at::Tensor> uniform(size_t(L), at::full({Mg}, 1.0 / Mg, kF64));
    c.balance = "pool";
    QVERIFY(std::abs(unipool::balance_loss(c, uniform, uniform).item<double>() - 2 * 0.05) < 1e-15);
    c.balance = "layer";
    QVERIFY(std::abs(unipool::balance_loss(c, uniform, uniform).item<double>() - L * 0.05) < 1e-15);
  }

  void ropeAndTables() {
    const int64_t B = 2, S = 5, nh = 3, hd = 8, half = 4;
    const double theta = 500.0;
    std::vector<double> cv(size_t(S * hd)), sv(size_t(S * hd));
    for (int64_t s = 0; s < S; ++s)
      for (int64_t i = 0; i < hd; ++i) {
        const double angle = double(s) * std::pow(theta, -2.0 * double(i % half) / double(hd));
        cv[size_t(s * hd + i)] = std::cos(angle);
        sv[size_t(s * hd + i)] = std::sin(angle);
      }
    const at::Tensor cos = at::tensor(cv, kF64).view({S, hd}),
                     sin = at::tensor(sv, kF64).view({S, hd});
    const auto [tc, ts] = unipool::rope_tables(S, hd, theta, at::kDouble);
    QVERIFY(max_rel_diff(tc, cos) < 1e-14);
    QVERIFY(max_rel_diff(ts, sin) < 1e-14);
    const auto [fc, fs] = unipool::rope_tables(S, hd, theta, at::kFloat);
    QVERIFY(fc.scalar_type() == at::kFloat && max_rel_diff(fc, cos) < 1e-6 &&
            max_rel_diff(fs, sin) < 1e-6);

    const at::Tensor x = randn({B, S, nh, hd}, 7);
    const at::Tensor y = unipool::rope(x, cos, sin);
    QCOMPARE(y.sizes().vec(), (std::vector<int64_t>{B, nh, S, hd}));
    const auto xv = to_vec(x), yv = to_vec(y);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t h = 0; h < nh; ++h)
          for (int64_t i = 0; i < hd; ++i) {
            const double* xr = xv.data() + ((b * S + s) * nh + h) * hd;
            // rope(x) = x*cos + rotate_half(x)*sin, rotate_half([x1, x2]) = [-x2, x1]
            const double rot = i < half ? -xr[i + half] : xr[i - half];
            const double want = xr[i] * cv[size_t(s * hd + i)] + rot * sv[size_t(s * hd + i)];
            QVERIFY(std::abs(yv[size_t(((b * nh + h) * S + s) * hd + i)] - want) < 1e-14);
          }
    // Float input gives the float result.
    QVERIFY(max_rel_diff(unipool::rope(x.to(at::kFloat), fc, fs), y) < 1e-5);
  }

  // The direct BLAS calls of the expert and attention GEMMs against LibTorch's mm and bmm, on
  // the views the step passes (narrowed, transposed, accumulating): equal to the last bit.
  void blasGemmMatchesLibTorch() {
    const at::Tensor q = randn({4, 40, 16}, 81).to(at::kFloat),
                     k = randn({4, 24, 16}, 82).to(at::kFloat);
    const at::Tensor qi = q.narrow(1, 8, 20),
                     kt = k.narrow(1, 0, 12).transpose(1, 2);  // (4,20,16) (4,16,12)
    at::Tensor out = at::empty({4, 20, 12});
    unipool::bmm_into(out, qi, kt, 0.0f);
    QVERIFY(at::equal(out, at::bmm(qi, kt)));
    at::Tensor acc = randn({4, 30, 16}, 83).to(at::kFloat), expected = acc.clone();
    const at::Tensor pt = out.transpose(1, 2), ki = k.narrow(1, 0, 20);  // (4,12,20) (4,20,16)
    unipool::bmm_into(acc.narrow(1, 0, 12), pt, ki, 1.0f);
    expected.narrow(1, 0, 12).baddbmm_(pt, ki);
    QVERIFY(at::equal(acc, expected));
    at::Tensor m = at::zeros({20, 12});
    unipool::gemm_into(m, qi[1], kt[1], 0.0f);
    QVERIFY(at::equal(m, at::mm(qi[1], kt[1])));
    // Entries under 400 multiply-adds (at::bmm's own loop) and (M, 1) results go to LibTorch.
    const at::Tensor sa = randn({3, 4, 5}, 84).to(at::kFloat),
                     sb = randn({3, 5, 6}, 85).to(at::kFloat);
    at::Tensor small = at::empty({3, 4, 6});
    unipool::bmm_into(small, sa, sb, 0.0f);
    QVERIFY(at::equal(small, at::bmm(sa, sb)));
    at::Tensor column = at::empty({20, 1});
    unipool::gemm_into(column, qi[0], k[0].narrow(0, 0, 1).t(), 0.0f);
    QVERIFY(at::equal(column, at::mm(qi[0], k[0].narrow(0, 0, 1).t())));
    // Double (the tests' precision) takes LibTorch's own ops.
    at::Tensor d = at::empty({4, 20, 12}, kF64);
    unipool::bmm_into(d, qi.to(at::kDouble), kt.to(at::kDouble), 0.0f);
    QVERIFY((d - at::bmm(qi, kt).to(at::kDouble)).abs().max().item<double>() < 1e-5);
  }

  void attention() {
    const struct { int64_t H, KV; } shapes[] = {{4, 2}, {4, 1}, {3, 3}};
    for (const auto& sh : shapes) {
      const int64_t B = 2, S = 6, hd = 4, H = sh.H, KV = sh.KV;
      const at::Tensor q = randn({B, H, S, hd}, 1), k = randn({B, KV, S, hd}, 2);
      // v as a transposed view, the way forward() passes it.
      const at::Tensor v = randn({B, S, KV, hd}, 3).transpose(1, 2);
      const at::Tensor o = unipool::causal_gqa_attention(q, k, v);
      QCOMPARE(o.sizes().vec(), (std::vector<int64_t>{B, H, S, hd}));
      const auto qa = q.accessor<double, 4>(), ka = k.accessor<double, 4>();
      const at::Tensor vc = v.contiguous();
      const auto va = vc.accessor<double, 4>();
      const auto oa = o.accessor<double, 4>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          const int64_t g = h / (H / KV);  // the kv head of query head h
          for (int64_t s = 0; s < S; ++s) {
            std::vector<double> p(size_t(s + 1));
            double mx = -1e300, sum = 0;
            for (int64_t j = 0; j <= s; ++j) {  // causal: keys 0..s only
              double dot = 0;
              for (int64_t i = 0; i < hd; ++i) dot += qa[b][h][s][i] * ka[b][g][j][i];
              p[size_t(j)] = dot / std::sqrt(double(hd));
              mx = std::max(mx, p[size_t(j)]);
            }
            for (double& e : p) sum += (e = std::exp(e - mx));
            for (int64_t i = 0; i < hd; ++i) {
              double want = 0;
              for (int64_t j = 0; j <= s; ++j) want += p[size_t(j)] / sum * va[b][g][j][i];
              QVERIFY(std::abs(oa[b][h][s][i] - want) < 1e-13);
            }
          }
        }
      // Float path agrees with the double one.
      QVERIFY(max_rel_diff(unipool::causal_gqa_attention(q.to(at::kFloat), k.to(at::kFloat),
                                                         v.to(at::kFloat)),
                           o) < 1e-5);
    }
  }

  void rmsNorm() {
    const at::Tensor x = randn({3, 4, 7}, 9) * 3.0, w = randn({7}, 10);
    const double eps = 1e-3;  // large enough to matter
    const at::Tensor y = unipool::rms_norm(x, w, eps);
    QCOMPARE(y.sizes().vec(), x.sizes().vec());
    const auto xv = to_vec(x), wv = to_vec(w), yv = to_vec(y);
    for (size_t r = 0; r < 12; ++r)
      for (size_t i = 0; i < 7; ++i)
        QVERIFY(std::abs(yv[r * 7 + i] - naive_rms(xv, r * 7, 7, i, wv, eps)) < 1e-14);
    QVERIFY(max_rel_diff(unipool::rms_norm(x.to(at::kFloat), w.to(at::kFloat), eps), y) < 1e-6);
  }

  // The float NormRouter of every training step (vectorised loops in cpu_kernels/) against the
  // double-precision path that normRouter() checks against the SPEC's loops: scores, logit
  // gradients and the scale's gradient, with every column and with a locked layer's subset.
  void normRouterFloatKernel() {
    const int64_t T = 300, M = 48;
    at::Tensor z = randn({T, M}, 91);
    z[5].zero_();                             // n = 0: scores and gradients 0
    z[6] = -z[6].abs();                       // every logit <= 0: zero gate
    const at::Tensor ds = randn({T, M}, 92);  // upstream gradient (first K columns used)
    const at::Tensor cols = at::tensor(std::vector<int64_t>{1, 4, 9, 17, 25, 33, 40, 47},
                                       at::TensorOptions().dtype(at::kLong));
    for (bool subset : {false, true}) {
      const int64_t K = subset ? 8 : M;
      auto run = [&](at::ScalarType type) {
        at::Tensor zz = z.to(type).detach().clone().requires_grad_(true);
        at::Tensor scale = at::full({1}, 0.9, at::TensorOptions().dtype(type)).requires_grad_(true);
        const at::Tensor s =
            unipool::norm_router_scores(zz, scale, 4.2, subset ? cols : at::Tensor());
        (s * ds.narrow(1, 0, K).to(type)).sum().backward();
        return std::vector<at::Tensor>{s.detach().to(at::kDouble), zz.grad().to(at::kDouble),
                                       scale.grad().to(at::kDouble)};
      };
      const auto f32 = run(at::kFloat), f64 = run(at::kDouble);
      for (size_t i = 0; i < 3; ++i) {
        const double err = (f32[i] - f64[i]).abs().max().item<double>();
        const double size = f64[i].abs().max().item<double>();
        QVERIFY2(
            err <= 2e-6 * size,
            qPrintable(
                QString("output %1, subset %2: %3 of %4").arg(i).arg(subset).arg(err).arg(size)));
      }
      QCOMPARE(f32[1][5].abs().sum().item<double>(), 0.0);
      QCOMPARE(f32[0][6].abs().sum().item<double>(), 0.0);
      QVERIFY(f64[1][6].abs().sum().item<double>() == 0.0);
    }
  }

  // SPEC 8.1's entropy term over stacked layers: the value against loops, the gradient against
  // central differences.
  void targetEntropyLoss() {
    const int L = 3, M = 5, target = 2;
    std::vector<at::Tensor> p;
    for (int l = 0; l < L; ++l) p.push_back((randn({M}, 60 + l).abs() * 0.3).requires_grad_(true));
    p[1].data()[2] = 0.0;  // a dead expert: ln(0 + 1e-8) stays finite
    auto naive = [&](const std::vector<std::vector<double>>& v) {
      double total = 0;
      for (const auto& layer : v) {
        double sum = 0, H = 0;
        for (double x : layer) sum += x;
        for (double x : layer) {
          const double q = x / (sum + 1e-8);
          H -= q * std::log(q + 1e-8);
        }
        total += (H - std::log(double(target))) * (H - std::log(double(target)));
      }
      return total;
    };
    std::vector<std::vector<double>> v;
    for (const auto& t : p) v.push_back(to_vec(t));
    const at::Tensor loss = unipool::target_entropy_loss(p, target);
    QVERIFY(std::abs(loss.item<double>() - naive(v)) < 1e-13);
    loss.backward();
    const double h = 1e-6;
    for (int l = 0; l < L; ++l)
      for (int i = 0; i < M; ++i) {
        if (l == 1 && i == 2) continue;  // at 0 the log's kink: one-sided only
        auto up = v, down = v;
        up[size_t(l)][size_t(i)] += h;
        down[size_t(l)][size_t(i)] -= h;
        const double numeric = (naive(up) - naive(down)) / (2 * h);
        QVERIFY2(std::abs(p[size_t(l)].grad()[i].item<double>() - numeric) < 1e-7,
                 qPrintable(QString("layer %1 expert %2").arg(l).arg(i)));
      }
  }

  void poolExperts() {
    const int64_t N = 4, d = 5, h = 3;
    const std::vector<int64_t> counts = {2, 0, 3, 1};
    const at::Tensor x = randn({6, d}, 11), wg = randn({N, h, d}, 12), wu = randn({N, h, d}, 13),
                     wd = randn({N, d, h}, 14);
    const at::Tensor y = unipool::pool_experts(x, counts, wg, wu, wd);
    const auto xa = x.accessor<double, 2>(), ya = y.accessor<double, 2>();
    const auto ga = wg.accessor<double, 3>(), ua = wu.accessor<double, 3>(),
               da = wd.accessor<double, 3>();
    int64_t row = 0;
    for (int64_t e = 0; e < N; ++e)
      for (int64_t c = 0; c < counts[size_t(e)]; ++c, ++row) {
        std::vector<double> act(static_cast<size_t>(h), 0.0);
        for (int64_t j = 0; j < h; ++j) {
          double g = 0, u = 0;
          for (int64_t i = 0; i < d; ++i) {
            g += ga[e][j][i] * xa[row][i];
            u += ua[e][j][i] * xa[row][i];
          }
          act[size_t(j)] = silu(g) * u;
        }
        for (int64_t i = 0; i < d; ++i) {
          double want = 0;
          for (int64_t j = 0; j < h; ++j) want += da[e][i][j] * act[size_t(j)];
          QVERIFY(std::abs(ya[row][i] - want) < 1e-13);
        }
      }
  }

  void evaluationWindows() {
    ModelConfig c = small_config();
    c.d_model = 16;
    c.expert_hidden = 16;
    c = finish(c);
    unipool::TrainOptions o;
    o.batch = 2;
    o.seq = 8;
    o.warmup_steps = 2;
    o.total_steps = 10;
    unipool::DataSpec data;
    data.builtin_bytes = 20000;
    unipool::Engine engine(c, o, data);
    for (int i = 0; i < 3; ++i) engine.train_step();  // weights away from their init
    const int S = 8;
    const std::string text = unipool::generate_builtin_corpus(400, 3).text;
    for (size_t n :
         {size_t(S + 1), size_t(2 * S), size_t(2 * S + 1), size_t(3 * S + 5), size_t(20 * S + 3)}) {
      const unipool::EvalResult r = engine.evaluate(text.substr(0, n), S);
      QCOMPARE(r.n_targets, int64_t((n - 1) / S) * S);
      QCOMPARE(r.routing.tokens, r.n_targets);
    }
    QVERIFY_THROWS_EXCEPTION(std::exception, engine.evaluate(text.substr(0, S), S));
    QCOMPARE(engine.evaluate(text.substr(0, 20 * S + 3), S, std::nullopt, 3).n_targets,
             int64_t(3 * S));

    // The loss and counts again, from forward() in double on one window at a time.
    QTemporaryDir dir;
    const std::string path = dir.filePath("m.safetensors").toStdString();
    engine.save(path);
    const unipool::ParamStore p = load_store(path, engine.config(), at::kDouble);
    const std::string t = text.substr(0, 20 * S + 3);  // 20 windows: more than one eval batch
    const unipool::EvalResult r = engine.evaluate(t, S);
    torch::NoGradGuard no_grad;
    double ce = 0;
    std::vector<int64_t> counts(size_t(c.n_layers * c.experts_per_group), 0);
    for (int w = 0; w < 20; ++w) {
      at::Tensor tokens = at::empty({1, S}, at::TensorOptions().dtype(at::kLong));
      for (int i = 0; i < S; ++i)
        tokens[0][i] = int64_t(static_cast<unsigned char>(t[size_t(w * S + i)]));
      const unipool::ForwardResult out = unipool::forward(c, p, tokens, unipool::RouteControl{});
      const auto logits = to_vec(out.logits);
      for (int i = 0; i < S; ++i) {
        const double* row = logits.data() + i * 256;
        const double mx = *std::max_element(row, row + 256);
        double sum = 0;
        for (int v = 0; v < 256; ++v) sum += std::exp(row[v] - mx);
        const int target = static_cast<unsigned char>(t[size_t(w * S + i + 1)]);
        ce += std::log(sum) + mx - row[target];
      }
      for (int l = 0; l < c.n_layers; ++l)
        for (int e = 0; e < c.experts_per_group; ++e)
          counts[size_t(l * c.experts_per_group + e)] += out.routes[size_t(l)].counts[size_t(e)];
    }
    ce /= 20.0 * S;
    QVERIFY2(std::abs(r.loss - ce) < 1e-5 * ce,
             qPrintable(QString("%1 vs %2").arg(r.loss).arg(ce)));
    QCOMPARE(r.routing.counts, counts);
  }

  void routesAndReuse() {
    ModelConfig c = small_config();
    c.d_model = 16;
    c.n_layers = 4;
    c.layers_per_group = 2;  // two pools: global ids need the group offset
    c.experts_per_group = 3;
    c = finish(c);
    unipool::TrainOptions o;
    o.batch = 2;
    o.seq = 16;
    unipool::DataSpec data;
    data.builtin_bytes = 20000;
    unipool::Engine engine(c, o, data);
    const std::string text = unipool::generate_builtin_corpus(33, 9).text;
    const unipool::TokenRoutes tr = engine.routes(text.substr(0, 32));
    const unipool::EvalResult r = engine.evaluate(text, 32);  // the same single window
    QCOMPARE(tr.n_tokens, int64_t(32));
    const int L = 4, k = 2, Mg = 3;
    std::vector<int64_t> counts(size_t(L * Mg), 0);
    double reuse = 0;
    for (int64_t t = 0; t < 32; ++t) {
      std::vector<int32_t> ids;
      for (int l = 0; l < L; ++l)
        for (int j = 0; j < k; ++j) {
          const int32_t e = tr.experts[size_t((t * L + l) * k + j)];
          QVERIFY(e >= (l / 2) * Mg && e < (l / 2 + 1) * Mg);
          ++counts[size_t(l * Mg + e - (l / 2) * Mg)];
          ids.push_back(e);
        }
      std::sort(ids.begin(), ids.end());
      reuse += double(std::unique(ids.begin(), ids.end()) - ids.begin()) / (L * k) / 32.0;
      double total = 0;
      for (int v = 0; v < 256; ++v) total += tr.next_byte[size_t(t * 256 + v)];
      QVERIFY(std::abs(total - 1.0) < 1e-4);
    }
    QCOMPARE(r.routing.counts, counts);
    QVERIFY(std::abs(unipool::summarize(r.routing).reuse - reuse) < 1e-12);
  }
};

QTEST_APPLESS_MAIN(TestFormulas)
#include "tst_formulas.moc"
