// The step's backends (model/backend.h) agree on the CPU: each operator of the generic
// (LibTorch ops, autograd) backend against the fused one, values and gradients; then whole
// runs of 20 training steps of the default, vanilla, grouped and unipool-lock presets, one on
// each backend: the losses of every step, the routing counts, the weights after 20 steps, and
// the gradient of every parameter at those weights. bf16 products (the GPU option) stay within
// bf16's error of fp32. Tolerances (fp32, different summation orders):
//   operators: |a - b| <= 1e-5 + 1e-4 |b|;  per-step loss: 1e-5 relative;
//   weights after 20 steps: max |a - b| <= 2e-5; gradients: 2e-4 of the tensor's largest
//   gradient; routing counts: at most 0.5% of the choices move between experts (a near-tie
//   can flip on another CPU's summation order). Measured here (2026-11-26): losses within
//   2e-7, weights 1.2e-6, gradients 2.5e-5, no routing choice different.
#include <QTemporaryDir>
#include <QtTest>

#include "model/backend.h"
#include "model/param_names.h"
#include "model/parameters.h"
#include "model/transformer.h"
#include "training/adamw.h"
#include "unipool/config.h"
#include "unipool/engine.h"
#include "unipool/random.h"
#include "unipool/safetensors.h"

using namespace unipool;

namespace {

bool close(const at::Tensor& a, const at::Tensor& b, double atol, double rtol, QString* why) {
  const at::Tensor diff = (a.to(at::kDouble) - b.to(at::kDouble)).abs();
  const at::Tensor bound = atol + rtol * b.to(at::kDouble).abs();
  if ((diff <= bound).all().item<bool>()) return true;
  *why = QStringLiteral("max |diff| %1, max |b| %2")
             .arg(diff.max().item<double>())
             .arg(b.abs().max().item<double>());
  return false;
}

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed) {
  at::Tensor t = at::empty(shape, at::kFloat);
  Rng rng(seed);
  float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(rng.normal());
  return t;
}

// Output and the gradients of sum(out * w) with respect to `inputs`, for one backend.
std::vector<at::Tensor> valueAndGrads(const std::function<at::Tensor(std::vector<at::Tensor>&)>& f,
                                      std::vector<at::Tensor> inputs, const at::Tensor& weight) {
  for (auto& t : inputs) t = t.detach().clone().set_requires_grad(true);
  const at::Tensor out = f(inputs);
  (out * weight).sum().backward();
  std::vector<at::Tensor> result = {out.detach()};
  for (auto& t : inputs) result.push_back(t.grad());
  return result;
}

ParamStore loadParams(const QString& path, const ModelConfig& c) {
  const SafetensorsFile file = read_safetensors(path.toStdString());
  ParamStore store;
  for (const auto& [name, shape] : expected_parameters(c)) {
    const TensorRecord* r = file.find(name);
    at::Tensor t = at::empty(shape, at::kFloat);
    std::memcpy(t.data_ptr<float>(), r->bytes.data(), r->bytes.size());
    store.add(name, t.set_requires_grad(true));
  }
  return store;
}

}  // namespace

class TestBackends : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void choosesWhatThisMachineCanRun() {
    QCOMPARE(choose_backend({})->kind(), BackendKind::FusedCpu);
    QCOMPARE(choose_backend({"cpu", "generic", false})->kind(), BackendKind::Generic);
    std::string why;
    if (!cuda_available(&why)) {
      QVERIFY(!why.empty());
      QVERIFY_THROWS_EXCEPTION(std::invalid_argument, choose_backend({"cuda", "auto", false}));
    }
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, choose_backend({"cpu", "generic", true}));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, choose_backend({"tpu", "auto", false}));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, choose_backend({"cpu", "magic", false}));
  }

  void operatorsAgree() {
    const StepBackend& fused = fused_cpu_backend();
    const auto generic = generic_backend(false);
    QString why;
    auto compare = [&](const char* what, auto f, std::vector<at::Tensor> in, at::Tensor w) {
      const auto a = valueAndGrads([&](auto& x) { return f(*generic, x); }, in, w);
      const auto b = valueAndGrads([&](auto& x) { return f(fused, x); }, in, w);
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].defined() && !b[i].defined()) continue;
        QVERIFY2(close(a[i], b[i], 1e-5, 1e-4, &why),
                 qPrintable(QStringLiteral("%1 [%2]: %3").arg(what).arg(i).arg(why)));
      }
    };
    const int64_t B = 2, S = 9, H = 4, KV = 2, hd = 8, T = B * S;
    compare(
        "rms_norm", [](const StepBackend& o, auto& x) { return o.rms_norm(x[0], x[1], 1e-5); },
        {randn({T, 16}, 1), randn({16}, 2)}, randn({T, 16}, 3));
    // rope_tables is the fused code's; both backends read the same tables.
    const at::Tensor cos = randn({S, hd}, 4).cos(), sin = randn({S, hd}, 4).sin();
    const at::Tensor cs = at::cat({cos.narrow(1, 0, hd / 2), cos.narrow(1, 0, hd / 2)}, 1);
    const at::Tensor sn = at::cat({sin.narrow(1, 0, hd / 2), sin.narrow(1, 0, hd / 2)}, 1);
    compare(
        "rope_grouped",
        [&](const StepBackend& o, auto& x) { return o.rope_grouped(x[0], cs, sn, 2); },
        {randn({B, S, H, hd}, 5)}, randn({B, KV, S, 2, hd}, 6));
    compare(
        "attention_grouped",
        [](const StepBackend& o, auto& x) { return o.attention_grouped(x[0], x[1], x[2]); },
        {randn({B, KV, S, 2, hd}, 7), randn({B, KV, S, hd}, 8), randn({B, KV, S, hd}, 9)},
        randn({B, KV, S, 2, hd}, 10));
    const at::Tensor cols = at::tensor(std::vector<int64_t>{1, 4, 6});
    for (const at::Tensor& c : {at::Tensor(), cols}) {
      compare(
          "norm_router_scores",
          [&](const StepBackend& o, auto& x) { return o.norm_router_scores(x[0], x[1], 2.5, c); },
          {randn({T, 8}, 11), at::full({1}, 0.7)}, randn({T, c.defined() ? 3 : 8}, 12));
    }
    // top-k with ties everywhere (relu zeros): the lower index first on both.
    at::Tensor s = at::relu(randn({T, 8}, 13)).round();
    QVERIFY(at::equal(generic->top_k(s, 3), fused.top_k(s, 3)));
    // The MoE block over a pool of 6 experts, top-2.
    const at::Tensor ids = at::remainder(at::arange(T * 2, at::kLong) * 5, 6).view({T, 2});
    compare(
        "moe",
        [&](const StepBackend& o, auto& x) {
          return o.moe(x[0], ids, x[1], x[2], x[3], x[4], false);
        },
        {randn({T, 16}, 14), randn({T, 2}, 15), randn({6, 12, 16}, 16) * 0.2,
         randn({6, 12, 16}, 17) * 0.2, randn({6, 16, 12}, 18) * 0.2},
        randn({T, 16}, 19));
  }

  void trainingRunsAgree_data() {
    QTest::addColumn<QString>("preset");
    for (const char* p : {"default", "vanilla", "grouped", "unipool-lock"}) QTest::newRow(p) << p;
  }
  void trainingRunsAgree() {
    QFETCH(QString, preset);
    Preset p = unipool::preset(preset.toStdString());
    p.train.batch = 4;
    p.train.seq = 32;
    DataSpec data;
    data.builtin_bytes = 200000;
    QTemporaryDir dir;
    std::vector<StepMetrics> runs[2];
    for (int b = 0; b < 2; ++b) {
      Engine e(p.model, p.train, data, 1);
      if (b == 1) e.set_compute({"cpu", "generic", false});
      e.set_collect_stats(true);
      if (p.model.lock.enabled) {  // all three phases in 20 steps: freeze at 8, lock at 14
        for (int i = 0; i < 8; ++i) runs[b].push_back(e.train_step());
        e.apply(FreezeNow{});
        for (int i = 0; i < 6; ++i) runs[b].push_back(e.train_step());
        e.apply(LockNow{});
      }
      while (runs[b].size() < 20) runs[b].push_back(e.train_step());
      e.save(dir.filePath(QStringLiteral("run%1.safetensors").arg(b)).toStdString());
    }
    int64_t moved = 0, choices = 0;
    double worst_loss = 0;
    for (size_t i = 0; i < 20; ++i) {
      const StepMetrics &g = runs[1][i], &f = runs[0][i];
      worst_loss = std::max(worst_loss, std::abs(g.loss - f.loss) / std::abs(f.loss));
      QVERIFY2(
          std::abs(g.loss - f.loss) <= 1e-5 * std::abs(f.loss),
          qPrintable(QStringLiteral("step %1: loss %2 vs %3").arg(i + 1).arg(g.loss).arg(f.loss)));
      for (size_t c = 0; c < f.routing.counts.size(); ++c) {
        moved += std::abs(g.routing.counts[c] - f.routing.counts[c]);
        choices += f.routing.counts[c];
      }
    }
    // `moved` counts each flip twice: at most 0.5% of the choices.
    QVERIFY2(moved <= choices / 100,
             qPrintable(QStringLiteral("%1 of %2 choices moved").arg(moved / 2).arg(choices)));
    qInfo("%s: worst relative loss difference %.2e; %lld of %lld routing choices differ",
          qPrintable(preset), worst_loss, (long long)(moved / 2), (long long)choices);
    // The weights after 20 steps, and every parameter's gradient at the fused run's weights.
    const ParamStore a = loadParams(dir.filePath("run0.safetensors"), p.model);
    const ParamStore b = loadParams(dir.filePath("run1.safetensors"), p.model);
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, (a.tensor(i) - b.tensor(i)).abs().max().item<double>());
    QVERIFY2(worst <= 2e-5, qPrintable(QStringLiteral("weights differ by %1").arg(worst)));
    qInfo("%s: weights after 20 steps differ by at most %.2e", qPrintable(preset), worst);
    ParamStore pa = loadParams(dir.filePath("run0.safetensors"), p.model);
    ParamStore pb = loadParams(dir.filePath("run0.safetensors"), p.model);
    const auto generic = generic_backend(false);
    at::Tensor tokens = at::remainder(at::arange(4 * 32, at::kLong) * 37 + 11, 256).view({4, 32});
    for (int b = 0; b < 2; ++b) {
      RouteControl control;
      control.backend = b == 0 ? &fused_cpu_backend() : generic.get();
      ParamStore& ps = b == 0 ? pa : pb;
      const ForwardResult out = forward(p.model, ps, tokens, control);
      const at::Tensor ce =
          at::cross_entropy_loss(out.logits.view({-1, p.model.vocab_size}), tokens.reshape({-1}));
      (ce + out.aux + out.z_loss).backward();
    }
    QString why;
    double worst_grad = 0;
    for (size_t i = 0; i < pa.size(); ++i) {
      const at::Tensor ga = pa.tensor(i).grad(), gb = pb.tensor(i).grad();
      QVERIFY2(ga.defined() == gb.defined(), qPrintable(QString::fromStdString(pa.name(i))));
      if (!ga.defined()) continue;
      const double scale = ga.abs().max().item<double>();
      worst_grad = std::max(worst_grad, (ga - gb).abs().max().item<double>() / (scale + 1e-30));
      QVERIFY2(close(gb, ga, 2e-4 * scale + 1e-9, 0, &why),
               qPrintable(QString::fromStdString(pa.name(i)) + ": " + why));
    }
    qInfo("%s: %zu parameter gradients, worst difference %.2e of the tensor's largest",
          qPrintable(preset), pa.size(), worst_grad);
  }

  // bf16 products with fp32 weights: the loss stays within bf16's error of fp32's.
  void bf16StaysNearFp32() {
    const Preset p = unipool::preset("default");
    ParamStore params = init_parameters(p.model, 3, at::kFloat);
    const at::Tensor tokens =
        at::remainder(at::arange(2 * 32, at::kLong) * 13 + 5, 256).view({2, 32});
    double loss[2];
    for (int b = 0; b < 2; ++b) {
      const auto ops = generic_backend(b == 1);
      RouteControl control;
      control.backend = ops.get();
      const ForwardResult out = forward(p.model, params, tokens, control);
      loss[b] =
          at::cross_entropy_loss(out.logits.view({-1, p.model.vocab_size}), tokens.reshape({-1}))
              .item<double>();
    }
    QVERIFY2(std::abs(loss[1] - loss[0]) < 2e-2 * loss[0],
             qPrintable(QStringLiteral("%1 vs %2").arg(loss[1]).arg(loss[0])));
    QVERIFY(loss[1] != loss[0]);  // bf16 did run
  }

  // The reference code's router details (issue 21 item 5). Init: only the routers' weights
  // change (drawn at the asked std); every other tensor keeps its bytes. Decay: with zero
  // gradients AdamW's update is the decay alone, p * (1 - lr * wd), with wd the routers' own,
  // the rest's, or none (norms, NormRouter scales); fused and generic updates agree.
  void routerInitAndDecay() {
    const Preset p = unipool::preset("default");
    const ParamStore base = init_parameters(p.model, 5, at::kFloat);
    ParamStore params = init_parameters(p.model, 5, at::kFloat, 0.01);
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string& name = params.name(i);
      if (param_names::is_router_weight(name)) {
        const double sd = params.tensor(i).std().item<double>();  // 24 x 128 draws
        QVERIFY2(std::abs(sd - 0.01) < 0.0005, qPrintable(QString::number(sd)));
      } else {
        QVERIFY2(at::equal(params.tensor(i), base.get(name)), name.c_str());
      }
    }
    AdamWSettings s;
    s.lr = 0.5;
    s.weight_decay = 0.1;
    s.router_weight_decay = 0.01;
    for (int generic = 0; generic < 2; ++generic) {
      ParamStore q = init_parameters(p.model, 5, at::kFloat);
      std::vector<at::Tensor> before;
      for (size_t i = 0; i < q.size(); ++i) {
        before.push_back(q.tensor(i).detach().clone());
        q.tensor(i).mutable_grad() = at::zeros_like(q.tensor(i));
      }
      AdamW opt;
      if (generic)
        opt.update_generic(q, s, 1);
      else
        opt.update(q, s, 1);
      for (size_t i = 0; i < q.size(); ++i) {
        const std::string& name = q.name(i);
        const double wd = param_names::is_norm_or_scale(name)    ? 0.0
                          : param_names::is_router_weight(name) ? 0.01
                                                                : 0.1;
        const at::Tensor expected = before[i] * float(1.0 - s.lr * wd);
        QVERIFY2(at::allclose(q.tensor(i).detach(), expected, 1e-6, 0), name.c_str());
        QCOMPARE(s.decay_of(name), wd);
      }
    }
    s.router_weight_decay = -1;  // unset: the routers decay like every other matrix
    QCOMPARE(s.decay_of(param_names::router_weight(0)), 0.1);
  }
};

QTEST_APPLESS_MAIN(TestBackends)
#include "tst_backends.moc"
