// UniPool-lock (SPEC section 8): the ownership program against brute force, the fade and
// warm-up formulas, the mask (no route outside the partition after the lock, gradients still
// reaching outside router rows through the norm), the schedule's events, resume across each
// phase boundary, the fail-stop, the control, and a lock run refused without its state.
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include "internal_util.h"
#include "model/norm_router.h"
#include "lock/partition.h"
#include "unipool/architecture.h"
#include "unipool/engine.h"
#include "unipool/random.h"
#include "unipool/safetensors.h"

using unipool::Engine;
using unipool::LockPhase;
using unipool::Partition;

namespace {

// The tiny shape as a lock run: 2 layers, K = 8, N = 16; freeze at 50, lock at 100.
unipool::Preset tiny_lock() {
  unipool::Preset p = unipool::preset("tiny");
  unipool::apply_architecture(p.model, unipool::Architecture::UniPoolLock);
  p.model.lock = unipool::lock_schedule(300);  // freeze 50, lock 100
  unipool::refresh_router_constant(p.model);
  p.train.total_steps = 300;
  return p;
}

std::unique_ptr<Engine> make(const unipool::Preset& p) {
  unipool::DataSpec data;
  data.builtin_bytes = 300000;
  return std::make_unique<Engine>(p.model, p.train, data);
}

std::vector<unipool::StepMetrics> train(Engine& e, int64_t until) {
  std::vector<unipool::StepMetrics> out;
  while (e.step() < until) out.push_back(e.train_step());
  return out;
}

QByteArray file_bytes(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

// Every partition of N experts into L layers of K, by brute force: f(owner).
void for_each_partition(int L, int N, const std::function<void(const std::vector<int>&)>& f) {
  const int K = N / L;
  std::vector<int> owner(size_t(N), -1), used(size_t(L), 0);
  std::function<void(int)> place = [&](int e) {
    if (e == N) {
      f(owner);
      return;
    }
    for (int l = 0; l < L; ++l) {
      if (used[size_t(l)] == K) continue;
      owner[size_t(e)] = l;
      ++used[size_t(l)];
      place(e + 1);
      --used[size_t(l)];
    }
  };
  place(0);
}

}  // namespace

class TestLock : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  // The GLPK program's optimum equals brute force's on every small case, and its answer is a
  // partition that meets the coverage.
  void partitionMatchesBruteForce() {
    const std::pair<int, int> shapes[] = {{2, 4}, {2, 6}, {3, 6}, {2, 8}, {3, 9}};
    unipool::Rng rng(11);
    int cases = 0;
    for (const auto& [L, N] : shapes) {
      for (double coverage : {0.5, 0.8, 0.95}) {
        for (int trial = 0; trial < 4; ++trial) {
          std::vector<double> C(size_t(L * N));
          // Skewed counts: each layer prefers a few experts, as trained routers do.
          for (double& c : C) c = std::floor(std::pow(rng.uniform(), 3.0) * 100.0);
          const std::vector<int> rank = unipool::routing_ranks(C, L, N);
          int64_t best = -1;
          double best_cover = -1;
          for_each_partition(L, N, [&](const std::vector<int>& owner) {
            bool feasible = true;
            int64_t ranks = 0;
            double cover_sum = 0;
            for (int l = 0; l < L; ++l) {
              double total = 0, kept = 0;
              for (int e = 0; e < N; ++e) {
                total += C[size_t(l * N + e)];
                if (owner[size_t(e)] == l) {
                  kept += C[size_t(l * N + e)];
                  ranks += rank[size_t(l * N + e)];
                }
              }
              feasible = feasible && kept >= coverage * total;
              cover_sum += total > 0 ? kept / total : 1.0;
            }
            if (feasible && (best < 0 || ranks < best)) best = ranks;
            best_cover = std::max(best_cover, cover_sum);
          });
          const Partition p = unipool::solve_partition(C, L, N, coverage);
          QCOMPARE(int(p.owned.size()), L);
          for (const auto& owned : p.owned) QCOMPARE(int(owned.size()), N / L);
          if (best >= 0) {
            QVERIFY(p.coverage_met);
            QCOMPARE(p.rank_sum, best);
            for (double c : p.coverage) QVERIFY(c >= coverage - 1e-9);
          } else {  // the transportation fallback: the best total coverage, deficits reported
            QVERIFY(!p.coverage_met);
            double sum = 0;
            for (double c : p.coverage) sum += c;
            QVERIFY2(std::abs(sum - best_cover) < 1e-9, qPrintable(QString::number(sum)));
            bool some_deficit = false;
            for (double d : p.deficit) some_deficit = some_deficit || d > 0;
            QVERIFY(some_deficit);
          }
          ++cases;
        }
      }
    }
    QCOMPARE(cases, 60);
  }

  // Both layers send everything to expert 0: no partition keeps 95% for both.
  void infeasibleCoverageFallsBack() {
    const std::vector<double> C = {100, 0, 0, 0, 90, 10, 0, 0};  // L = 2, N = 4
    const Partition p = unipool::solve_partition(C, 2, 4, 0.95);
    QVERIFY(!p.coverage_met);
    QCOMPARE(p.owner[0], 0);  // layer 0 keeps its 100% (1.0 + 0.1 beats 0 + 0.9 + ... )
    QCOMPARE(p.coverage[0], 1.0);
    QCOMPARE(p.coverage[1], 0.1);
    QCOMPARE(p.deficit[1], 0.95 - 0.1);
    QCOMPARE(p.deficit[0], 0.0);
  }

  void fadeAndWarmupFormulas() {
    unipool::LockConfig k;
    k.enabled = true;
    k.freeze_step = 100;
    k.lock_step = 300;
    QCOMPARE(unipool::fade_alpha(k, 50), 0.0);
    QCOMPARE(unipool::fade_alpha(k, 100), 0.0);
    QVERIFY(std::abs(unipool::fade_alpha(k, 200) - 0.5) < 1e-15);
    QVERIFY(std::abs(unipool::fade_alpha(k, 150) - (1 - std::cos(M_PI / 4)) / 2) < 1e-15);
    QCOMPARE(unipool::fade_alpha(k, 300), 1.0);
    QCOMPARE(unipool::fade_alpha(k, 5000), 1.0);
    k.entropy_coef = 0.01;
    k.entropy_warmup = 20;
    QCOMPARE(unipool::entropy_coef_at(k, 0), 0.0);
    QVERIFY(std::abs(unipool::entropy_coef_at(k, 5) - 0.0025) < 1e-15);
    QCOMPARE(unipool::entropy_coef_at(k, 40), 0.01);
    const unipool::LockConfig s = unipool::lock_schedule(1000);
    QCOMPARE(s.freeze_step, 150);
    QCOMPARE(s.lock_step, 300);
    QCOMPARE(unipool::lock_schedule(300).freeze_step, 50);
    QCOMPARE(unipool::lock_schedule(300).lock_step, 100);
  }

  void configRoundTripAndRefusals() {
    const unipool::Preset p = unipool::preset("unipool-lock");
    QCOMPARE(unipool::config_from_json(unipool::to_json(p.model)), p.model);
    QVERIFY(unipool::to_json(p.model).find("\"lock\"") != std::string::npos);
    QVERIFY(unipool::to_json(unipool::preset("default").model).find("lock") == std::string::npos);
    auto refused = [&](auto edit) {
      unipool::ModelConfig c = p.model;
      edit(c);
      QVERIFY_THROWS_EXCEPTION(unipool::ConfigError, unipool::validate(c));
    };
    refused([](auto& c) { c.layers_per_group = 2; });                 // not one pool
    refused([](auto& c) { c.experts_per_group = 47; });               // not K x L
    refused([](auto& c) { c.lock.lock_step = c.lock.freeze_step; });  // lock before freeze
    refused([](auto& c) { c.lock.coverage = 1.5; });
    refused([](auto& c) { c.lock.partition = "greedy"; });
    refused([](auto& c) { c.top_k = 9; });  // above K = 8
    unipool::ModelConfig off_grid = tiny_lock().model;
    off_grid.lock.freeze_step = 60;  // not a validation step
    QVERIFY_THROWS_EXCEPTION(unipool::ConfigError,
                             Engine(off_grid, tiny_lock().train, unipool::DataSpec{}));
  }

  // The schedule: validations feed the freeze, the partition appears at 50, the lock at 100;
  // after it no route leaves the partition, in training or evaluation.
  void scheduleFreezesFadesAndLocks() {
    auto e = make(tiny_lock());
    std::vector<unipool::StepMetrics> m = train(*e, 120);
    QCOMPARE(m[0].phase, LockPhase::FullPool);
    QCOMPARE(m[0].entropy_loss, 0.0);  // the warm-up starts at 0
    QVERIFY(m[10].entropy_loss > 0);
    QVERIFY(m[49].validated);
    QCOMPARE(m[49].event, std::string("freeze"));
    QCOMPARE(m[49].phase, LockPhase::Fade);
    QCOMPARE(m[99].event, std::string("lock"));
    QCOMPARE(m[100].phase, LockPhase::Locked);
    const unipool::LockStatus st = e->lock_status();
    QCOMPARE(int(st.owned.size()), 2);
    QCOMPARE(int(st.owned[0].size()), 8);
    QVERIFY(std::isfinite(st.reference_loss));
    std::vector<int> seen;
    for (const auto& layer : st.owned) seen.insert(seen.end(), layer.begin(), layer.end());
    std::sort(seen.begin(), seen.end());
    for (int i = 0; i < 16; ++i) QCOMPARE(seen[size_t(i)], i);  // each expert one owner
    for (size_t i = 100; i < m.size(); ++i) {
      const auto d = unipool::diagnose(m[i].routing, &st.owned);
      QCOMPARE(d.routes_outside, int64_t(0));
    }
    const auto fading = unipool::diagnose(m[60].routing, &st.owned);
    QVERIFY(fading.routes_outside > 0);  // early in the fade, outside experts still win
    const unipool::EvalResult v = e->evaluate_validation(8);
    QCOMPARE(unipool::diagnose(v.routing, &st.owned).routes_outside, int64_t(0));
  }

  // Locked: outside experts cannot be chosen, yet their router rows still get gradients
  // (their logits enter the L2 norm, so the step before and after the lock see the same scores).
  void maskKeepsOutsideGradients() {
    unipool::ModelConfig c = tiny_lock().model;
    torch::manual_seed(3);
    unipool::ParamStore p = unipool::init_parameters(c, 5, at::kDouble);
    std::vector<std::vector<int64_t>> owned = {{0, 2, 4, 6, 8, 10, 12, 14},
                                               {1, 3, 5, 7, 9, 11, 13, 15}};
    unipool::RouteControl control;
    control.owned = &owned;
    control.lock_alpha = 1.0;
    control.entropy_coef = 0.01;
    control.entropy_target = 8;
    const at::Tensor tokens = at::randint(0, 256, {2, 16}, at::TensorOptions().dtype(at::kLong));
    const unipool::ForwardResult out = unipool::forward(c, p, tokens, control);
    for (int l = 0; l < 2; ++l) {
      const at::Tensor local = out.routes[size_t(l)].local;
      for (int64_t i = 0; i < local.numel(); ++i)
        QCOMPARE(local.view({-1})[i].item<int64_t>() % 2, int64_t(l));
    }
    (out.logits.sum() * 1e-3 + out.aux + out.entropy_loss).backward();
    const at::Tensor g = p.get("layers.0.router.weight").grad();  // (16, d)
    for (int e = 1; e < 16; e += 2)                               // experts layer 0 does not own
      QVERIFY2(g[e].abs().sum().item<double>() > 0, qPrintable(QString::number(e)));
  }

  // The fused NormRouter with a column subset (a locked layer) against finite differences:
  // the norm over every logit gives the unselected columns their gradient.
  void normRouterColumnsGradient() {
    torch::manual_seed(7);
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    at::Tensor z = at::randn({5, 7}, f64).requires_grad_(true);
    z.data()[2].fill_(-1.0);  // a token with every logit <= 0: zero gate, zero gradient
    at::Tensor scale = at::full({1}, 0.7, f64).requires_grad_(true);
    const at::Tensor cols =
        at::tensor(std::vector<int64_t>{1, 4, 6}, at::TensorOptions().dtype(at::kLong));
    const at::Tensor w = at::randn({5, 3}, f64);
    auto loss = [&](const at::Tensor& zz, const at::Tensor& ss) {
      return (unipool::norm_router_scores(zz, ss, 2.5, cols) * w).sum();
    };
    loss(z, scale).backward();
    const double h = 1e-6;
    for (int64_t i = 0; i < z.numel(); ++i) {
      at::Tensor zp = z.detach().clone(), zm = z.detach().clone();
      zp.view({-1})[i] += h;
      zm.view({-1})[i] -= h;
      const double numeric =
          (loss(zp, scale.detach()).item<double>() - loss(zm, scale.detach()).item<double>()) /
          (2 * h);
      QVERIFY2(std::abs(z.grad().view({-1})[i].item<double>() - numeric) < 1e-7,
               qPrintable(QString::number(i)));
    }
    const double ds = (loss(z.detach(), scale.detach() + h).item<double>() -
                       loss(z.detach(), scale.detach() - h).item<double>()) /
                      (2 * h);
    QVERIFY(std::abs(scale.grad().item<double>() - ds) < 1e-7);
    QVERIFY(z.grad()[0][0].item<double>() != 0);  // unselected column, through the norm
    QCOMPARE(z.grad()[2].abs().sum().item<double>(), 0.0);
  }

  // Save and resume before the freeze, mid-fade and after the lock: the files at the end are
  // byte-identical to an unbroken run's.
  void resumeAcrossPhasesIsExact() {
    QTemporaryDir dir;
    const unipool::Preset p = tiny_lock();
    auto unbroken = make(p);
    train(*unbroken, 130);
    const QString a = dir.filePath(QStringLiteral("a.safetensors"));
    unbroken->save(a.toStdString());

    auto e = make(p);
    const QString b = dir.filePath(QStringLiteral("b.safetensors"));
    for (int64_t stop : {40, 75, 110, 130}) {
      train(*e, stop);
      e->save(b.toStdString());
      if (stop == 130) break;
      e = Engine::open(b.toStdString(), /*resume=*/true);
      QCOMPARE(e->step(), stop);
    }
    QCOMPARE(file_bytes(b), file_bytes(a));
    QCOMPARE(file_bytes(dir.filePath(QStringLiteral("b.train.safetensors"))),
             file_bytes(dir.filePath(QStringLiteral("a.train.safetensors"))));
    // The model file carries the partition for an inspector (no training state needed).
    auto model_only = Engine::open(a.toStdString(), /*resume=*/false);
    QCOMPARE(model_only->lock_status().owned, unbroken->lock_status().owned);
    QCOMPARE(model_only->lock_status().phase, LockPhase::Locked);
  }

  // A lock run's training state without its lock state is refused with a message.
  void resumeWithoutLockStateIsRefused() {
    QTemporaryDir dir;
    auto e = make(tiny_lock());
    train(*e, 60);
    const std::string path = dir.filePath(QStringLiteral("m.safetensors")).toStdString();
    e->save(path);
    const std::string state = unipool::train_state_path(path);
    unipool::SafetensorsFile f = unipool::read_safetensors(state);
    QVERIFY(f.metadata.erase("lock_state") == 1);
    unipool::write_safetensors_atomic(state, f.metadata, f.tensors);
    try {
      Engine::open(path, /*resume=*/true);
      QFAIL("a lock run resumed without its lock state");
    } catch (const unipool::CheckpointError& err) {
      QVERIFY2(std::string(err.what()).find("lock state") != std::string::npos, err.what());
    }
  }

  // Validation above reference + margin twice in a row stops training with a message.
  void failStopStopsTraining() {
    unipool::Preset p = tiny_lock();
    p.model.lock.loss_margin = 0.0;
    auto e = make(p);
    train(*e, 50);
    QVERIFY(std::isfinite(e->lock_status().reference_loss));
    e->apply(unipool::LearningRate{2.0});  // large steps: the validation loss climbs
    std::string event;
    try {
      while (e->step() < 400 && event != "fail-stop") event = e->train_step().event;
    } catch (const unipool::LockStopped&) {
      QFAIL("the stop should be reported by the step that caused it");
    }
    QCOMPARE(event, std::string("fail-stop"));
    QVERIFY(e->lock_status().stopped);
    QVERIFY(e->lock_status().stop_reason.find("fail-stop") != std::string::npos);
    QVERIFY_THROWS_EXCEPTION(unipool::LockStopped, e->train_step());
  }

  // The control: a random disjoint partition, locked from the first step.
  void randomPartitionIsLockedFromTheStart() {
    unipool::Preset p = tiny_lock();
    p.model.lock.partition = "random";
    p.model.lock.freeze_step = p.model.lock.lock_step = 0;
    auto e = make(p);
    const unipool::LockStatus st = e->lock_status();
    QCOMPARE(st.phase, LockPhase::Locked);
    const auto m = train(*e, 5);
    for (const auto& s : m)
      QCOMPARE(unipool::diagnose(s.routing, &st.owned).routes_outside, int64_t(0));
    auto twin = make(p);  // fixed by the seed
    QCOMPARE(twin->lock_status().owned, st.owned);
  }

  // Freeze now and Lock now, as the studio's buttons do.
  void freezeAndLockNow() {
    auto e = make(tiny_lock());
    train(*e, 7);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->apply(unipool::LockNow{}));
    const unipool::AppliedSetting f = e->apply(unipool::FreezeNow{});
    QCOMPARE(f.kind, std::string("freeze"));
    QCOMPARE(e->config().lock.freeze_step, 7);
    QCOMPARE(e->config().lock.lock_step, 57);  // the schedule's distance kept
    QCOMPARE(e->lock_status().phase, LockPhase::Fade);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->apply(unipool::FreezeNow{}));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->apply(unipool::PoolSize{24, {}}));
    train(*e, 9);
    e->apply(unipool::LockNow{});
    QCOMPARE(e->config().lock.lock_step, 9);
    QCOMPARE(e->lock_status().phase, LockPhase::Locked);
    const auto m = train(*e, 12);
    const auto owned = e->lock_status().owned;
    for (const auto& s : m)
      QCOMPARE(unipool::diagnose(s.routing, &owned).routes_outside, int64_t(0));
  }
};

QTEST_APPLESS_MAIN(TestLock)
#include "tst_lock.moc"
