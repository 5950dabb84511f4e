// The LibTorch references of the GPU MoE kernels (core/src/model/moe_reference.h) against the
// CPU engine's own routing and experts (router.cpp, experts.cpp, model.cpp), and their
// gradients against finite differences. The GPU tests (tests/gpu/) then hold each kernel to
// its reference, so a kernel that passes there computes what the CPU engine computes.
#include <torch/torch.h>

#include <QtTest>
#include <cfloat>
#include <functional>

#include "model/moe_reference.h"
#include "internal_util.h"

using namespace testutil;
namespace ref = unipool::moe_ref;

namespace {

// Elementwise |a - b| <= abs_tol + |b| * rel; reports the worst element when it fails.
bool close(const at::Tensor& a, const at::Tensor& b, double abs_tol, double rel, const char* what) {
  const at::Tensor ad = a.detach().to(at::kDouble), bd = b.detach().to(at::kDouble);
  if (ad.sizes() != bd.sizes()) {
    qWarning("%s: shapes differ", what);
    return false;
  }
  const at::Tensor excess = (ad - bd).abs() - (bd.abs() * rel + abs_tol);
  if (excess.numel() == 0 || excess.max().item<double>() <= 0.0) return true;
  const int64_t i = excess.reshape({-1}).argmax().item<int64_t>();
  qWarning("%s: element %lld is %.9g, expected %.9g", what, static_cast<long long>(i),
           ad.reshape({-1})[i].item<double>(), bd.reshape({-1})[i].item<double>());
  return false;
}

double eps_of(at::ScalarType t) { return t == at::kFloat ? double(FLT_EPSILON) : DBL_EPSILON; }

// Central differences of loss() in every element of `param` (a double leaf) against autograd.
bool grad_matches_fd(const std::function<at::Tensor()>& loss, at::Tensor param, const char* what) {
  if (param.grad().defined()) param.mutable_grad().zero_();
  loss().backward();
  const at::Tensor analytic = param.grad().clone();
  at::Tensor numeric = at::zeros_like(analytic);
  const double h = 1e-6;
  {
    torch::NoGradGuard no_grad;
    at::Tensor flat = param.view({-1});
    at::Tensor nflat = numeric.view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double keep = flat[i].item<double>();
      flat[i] = keep + h;
      const double up = loss().item<double>();
      flat[i] = keep - h;
      const double down = loss().item<double>();
      flat[i] = keep;
      nflat[i] = (up - down) / (2 * h);
    }
  }
  return close(analytic, numeric, 1e-6, 1e-6, what);
}

unipool::ModelConfig route_config(const QString& router, int k, bool renorm) {
  unipool::ModelConfig c = small_config();
  c.router = router.toStdString();
  c.top_k = k;
  c.experts_per_group = 6;
  c.renormalize_gates = renorm;
  return finish(c);
}

ref::RouteSpec spec_of(const unipool::ModelConfig& c, bool random, uint64_t seed) {
  ref::RouteSpec s;
  s.top_k = c.top_k;
  s.norm = c.router == "norm";
  s.router_c = c.router_c;
  s.renormalize = c.renormalize_gates;
  s.random = random;
  s.seed = seed;
  return s;
}

}  // namespace

class TestMoeReference : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void routeMatchesEngine_data() {
    QTest::addColumn<QString>("router");
    QTest::addColumn<int>("k");
    QTest::addColumn<bool>("renorm");
    QTest::addColumn<bool>("random");
    QTest::addColumn<bool>("is_double");
    for (const char* r : {"norm", "softmax"})
      for (int k : {1, 2, 3})
        for (bool renorm : {false, true})
          for (bool random : {false, true})
            for (bool dbl : {false, true})
              QTest::addRow("%s k%d%s%s %s", r, k, renorm ? " renorm" : "", random ? " random" : "",
                            dbl ? "f64" : "f32")
                  << QString::fromLatin1(r) << k << renorm << random << dbl;
  }

  // Scores, choices, gates and the gradients of x, router weight and scale, against
  // route_tokens(); zero token rows make all-zero NormRouter scores (ties to expert 0).
  void routeMatchesEngine() {
    QFETCH(QString, router);
    QFETCH(int, k);
    QFETCH(bool, renorm);
    QFETCH(bool, random);
    QFETCH(bool, is_double);
    const unipool::ModelConfig c = route_config(router, k, renorm);
    const at::ScalarType dt = is_double ? at::kDouble : at::kFloat;
    const int64_t T = 40, d = c.d_model, Mg = c.experts_per_group;
    const uint64_t seed = 77;
    at::Tensor x = randn({T, d}, 1).to(dt);
    x[3].zero_();
    x[17].zero_();
    x = x.requires_grad_(true);
    at::Tensor w = randn({Mg, d}, 2).to(dt).requires_grad_(true);
    at::Tensor scale = (1.0 + randn({1}, 3, 0.1)).to(dt).requires_grad_(true);
    const at::Tensor probe = randn({T, k}, 4).to(dt);  // loss = <gates, probe>

    const unipool::RouterOutput eng = unipool::route_tokens(c, x, w, scale, random, seed);
    (eng.gates * probe).sum().backward();
    const at::Tensor gx = x.grad().clone(), gw = w.grad().clone();
    const at::Tensor gs = scale.grad().defined() ? scale.grad().clone() : at::Tensor();
    x.mutable_grad().zero_();
    w.mutable_grad().zero_();
    if (gs.defined()) scale.mutable_grad().zero_();

    const ref::Route r = ref::route(at::mm(x, w.t()), scale, spec_of(c, random, seed));
    (r.gates * probe).sum().backward();

    const double eps = 4 * eps_of(dt);
    QVERIFY(close(r.scores, eng.scores, eps, eps, "scores"));
    QCOMPARE(to_ivec(r.local), to_ivec(eng.local));
    QCOMPARE(to_ivec(r.top), to_ivec(unipool::top_k_lowest_index(eng.scores, k)));
    // Token 3 has all-equal scores (zero logits): ties go to the lowest indices, in order.
    std::vector<int64_t> lowest(static_cast<size_t>(k));
    std::iota(lowest.begin(), lowest.end(), 0);
    QCOMPARE(to_ivec(r.top[3]), lowest);
    QVERIFY(close(r.gates, eng.gates, eps, eps, "gates"));
    const double gtol = 50 * eps;  // different but equivalent op orders in backward
    QVERIFY(close(x.grad(), gx, gtol, gtol, "grad x"));
    QVERIFY(close(w.grad(), gw, gtol, gtol, "grad router weight"));
    if (c.router == "norm") QVERIFY(close(scale.grad(), gs, gtol, gtol, "grad scale"));
  }

  // The random rule is the engine's, draw for draw.
  void randomChoiceMatchesEngine() {
    for (int mg : {1, 2, 7, 24, 96})
      for (int k : {1, 2, 3})
        for (uint64_t seed : {0ull, 5ull, 0xDEADBEEFull}) {
          if (k > mg) continue;
          const at::Tensor a = ref::random_choice(300, mg, k, seed);
          QCOMPARE(to_ivec(a), to_ivec(unipool::random_experts(300, mg, k, seed)));
        }
  }

  // A stable counting sort, checked against loops.
  void permuteIsStableCountingSort() {
    const int64_t A = 257, E = 9;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    const at::Tensor expert = at::randint(0, E - 2, {A}, gen, at::TensorOptions().dtype(at::kLong));
    const ref::Permutation p = ref::permute(expert.to(at::kInt), E);
    const auto ids = to_ivec(expert);
    std::vector<int64_t> counts(E, 0), offsets(E + 1, 0), sorted, slot_row(A);
    for (int64_t e : ids) ++counts[size_t(e)];
    for (int64_t e = 0; e < E; ++e) offsets[size_t(e + 1)] = offsets[size_t(e)] + counts[size_t(e)];
    for (int64_t e = 0; e < E; ++e)
      for (int64_t a = 0; a < A; ++a)
        if (ids[size_t(a)] == e) {
          slot_row[size_t(a)] = int64_t(sorted.size());
          sorted.push_back(a);
        }
    QCOMPARE(to_ivec(p.counts), counts);
    QCOMPARE(to_ivec(p.offsets), offsets);
    QCOMPARE(to_ivec(p.sorted_slot), sorted);
    QCOMPARE(to_ivec(p.slot_row), slot_row);
  }

  // Experts over sorted rows and their gradients against pool_experts() (hand-written CPU).
  void swigluMatchesEngine() {
    for (at::ScalarType dt : {at::kFloat, at::kDouble}) {
      const int64_t E = 5, d = 8, h = 12;
      const std::vector<int64_t> counts = {3, 0, 7, 1, 4};
      const int64_t A = 15;
      at::Tensor x = randn({A, d}, 21).to(dt).requires_grad_(true);
      at::Tensor wg = randn({E, h, d}, 22, 0.4).to(dt).requires_grad_(true);
      at::Tensor wu = randn({E, h, d}, 23, 0.4).to(dt).requires_grad_(true);
      at::Tensor wd = randn({E, d, h}, 24, 0.4).to(dt).requires_grad_(true);
      const at::Tensor probe = randn({A, d}, 25).to(dt);
      const at::Tensor y_eng = unipool::pool_experts(x, counts, wg, wu, wd);
      (y_eng * probe).sum().backward();
      std::vector<at::Tensor> eng_grads;
      for (at::Tensor* t : {&x, &wg, &wu, &wd}) {
        eng_grads.push_back(t->grad().clone());
        t->mutable_grad().zero_();
      }
      const at::Tensor y = ref::grouped_swiglu(x, at::tensor(counts), wg, wu, wd);
      (y * probe).sum().backward();
      const double eps = 16 * eps_of(dt), abs_tol = 4 * eps;
      QVERIFY(close(y, y_eng, abs_tol, eps, "experts y"));
      const char* names[] = {"grad x", "grad w_gate", "grad w_up", "grad w_down"};
      int i = 0;
      for (at::Tensor* t : {&x, &wg, &wu, &wd}) {
        QVERIFY(close(t->grad(), eng_grads[size_t(i)], abs_tol, eps, names[i]));
        ++i;
      }
    }
  }

  // permute + gather + experts + combine against dispatch_experts() for a layer of the
  // second pool (global ids = local + Mg), output and every gradient.
  void blockMatchesEngineDispatch() {
    for (int k : {1, 2}) {
      const int64_t T = 30, d = 8, h = 10, Mg = 4, N = 2 * Mg;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(31 + k);
      at::Tensor local = at::empty({T, k}, at::TensorOptions().dtype(at::kLong));
      for (int64_t t = 0; t < T; ++t) {  // k distinct experts per token, as routing gives
        const at::Tensor perm = at::randperm(Mg, gen);
        local[t] = perm.narrow(0, 0, k);
      }
      at::Tensor x = randn({T, d}, 32).requires_grad_(true);
      at::Tensor gates = randn({T, k}, 33).abs().requires_grad_(true);
      at::Tensor wg = randn({N, h, d}, 34, 0.4).requires_grad_(true);
      at::Tensor wu = randn({N, h, d}, 35, 0.4).requires_grad_(true);
      at::Tensor wd = randn({N, d, h}, 36, 0.4).requires_grad_(true);
      const at::Tensor probe = randn({T, d}, 37);
      const at::Tensor out_eng = unipool::dispatch_experts(x, local + Mg, gates, wg, wu, wd);
      (out_eng * probe).sum().backward();
      std::vector<at::Tensor> eng_grads;
      for (at::Tensor* t : {&x, &gates, &wg, &wu, &wd}) {
        eng_grads.push_back(t->grad().clone());
        t->mutable_grad().zero_();
      }
      const at::Tensor out = ref::moe_block(x, local, gates, wg.narrow(0, Mg, Mg),
                                            wu.narrow(0, Mg, Mg), wd.narrow(0, Mg, Mg));
      (out * probe).sum().backward();
      const double tol = 1e-12;
      QVERIFY(close(out, out_eng, tol, tol, "block out"));
      const char* names[] = {"grad x", "grad gates", "grad w_gate", "grad w_up", "grad w_down"};
      int i = 0;
      for (at::Tensor* t : {&x, &gates, &wg, &wu, &wd}) {
        QVERIFY(close(t->grad(), eng_grads[size_t(i)], tol, tol, names[i]));
        ++i;
      }
      // The first pool is untouched by this layer.
      QCOMPARE(wg.grad().narrow(0, 0, Mg).abs().max().item<double>(), 0.0);
    }
  }

  void routeGradientsByFiniteDifferences() {
    for (bool norm : {true, false})
      for (bool renorm : {false, true})
        for (bool random : {false, true}) {
          ref::RouteSpec s;
          s.top_k = 2;
          s.norm = norm;
          s.router_c = 2.04;
          s.renormalize = renorm;
          s.random = random;
          s.seed = 3;
          at::Tensor z = randn({12, 5}, 41).requires_grad_(true);
          at::Tensor scale = (1.0 + randn({1}, 42, 0.1)).requires_grad_(true);
          const at::Tensor probe = randn({12, 2}, 43);
          auto loss = [&] { return (ref::route(z, scale, s).gates * probe).sum(); };
          QVERIFY(grad_matches_fd(loss, z, "route: grad logits"));
          if (norm) QVERIFY(grad_matches_fd(loss, scale, "route: grad scale"));
        }
  }

  void blockGradientsByFiniteDifferences() {
    const int64_t T = 9, d = 4, h = 5, E = 3, k = 2;
    at::Tensor local = at::tensor({0, 2, 1, 0, 2, 1, 0, 1, 2, 0, 1, 2, 2, 0, 1, 0, 0, 2},
                                  at::TensorOptions().dtype(at::kLong))
                           .view({T, k});
    at::Tensor x = randn({T, d}, 51).requires_grad_(true);
    at::Tensor gates = randn({T, k}, 52).requires_grad_(true);
    at::Tensor wg = randn({E, h, d}, 53, 0.5).requires_grad_(true);
    at::Tensor wu = randn({E, h, d}, 54, 0.5).requires_grad_(true);
    at::Tensor wd = randn({E, d, h}, 55, 0.5).requires_grad_(true);
    const at::Tensor probe = randn({T, d}, 56);
    auto loss = [&] { return (ref::moe_block(x, local, gates, wg, wu, wd) * probe).sum(); };
    QVERIFY(grad_matches_fd(loss, x, "block: grad x"));
    QVERIFY(grad_matches_fd(loss, gates, "block: grad gates"));
    QVERIFY(grad_matches_fd(loss, wg, "block: grad w_gate"));
    QVERIFY(grad_matches_fd(loss, wu, "block: grad w_up"));
    QVERIFY(grad_matches_fd(loss, wd, "block: grad w_down"));
  }
};

QTEST_APPLESS_MAIN(TestMoeReference)
#include "tst_moe_reference.moc"
