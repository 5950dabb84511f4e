// Training through the public Engine API: the loss falls, runs are reproducible, resuming equals
// an uninterrupted run, pool resizing keeps what it should, and the run-time settings act.
#include <sys/resource.h>
#include <unistd.h>

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "memory_cap.h"
#include "unipool/corpus.h"
#include "unipool/engine.h"
#include "unipool/safetensors.h"
#include "unipool/schedule.h"

using unipool::Engine;
using unipool::StepMetrics;

namespace {

std::unique_ptr<Engine> tiny(int total_steps, uint64_t seed = 1234,
                             unipool::ModelConfig* model = nullptr) {
  unipool::Preset p = unipool::preset("tiny");
  p.train.total_steps = total_steps;
  p.train.seed = seed;
  unipool::DataSpec data;
  data.builtin_bytes = 300000;
  return std::make_unique<Engine>(model ? *model : p.model, p.train, data);
}

QByteArray file_bytes(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

// Row `r` of a stored F32 tensor whose first dimension indexes rows.
std::vector<float> row(const unipool::SafetensorsFile& f, const std::string& name, int64_t r) {
  const unipool::TensorRecord* t = f.find(name);
  if (!t) return {};
  const int64_t per_row = t->numel() / t->shape[0];
  std::vector<float> out(static_cast<size_t>(per_row));
  std::memcpy(out.data(), t->bytes.data() + r * per_row * 4, size_t(per_row) * 4);
  return out;
}

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s / double(v.size()));
}

int64_t layer_sum(const unipool::RoutingCounts& r, int l) {
  int64_t s = 0;
  for (int i = 0; i < r.experts_per_group; ++i) s += r.count(l, i);
  return s;
}

std::vector<int64_t> layer_counts(const unipool::RoutingCounts& r, int l) {
  std::vector<int64_t> out;
  for (int i = 0; i < r.experts_per_group; ++i) out.push_back(r.count(l, i));
  return out;
}

// The pool and router rows of `after` are the rows `keep` of `before` (weights and moments).
void expect_rows_kept(const std::string& before, const std::string& after,
                      const std::vector<std::vector<int64_t>>& keep_per_layer,
                      const std::vector<int64_t>& keep_global) {
  const auto mb = unipool::read_safetensors(before), ma = unipool::read_safetensors(after);
  const auto tb = unipool::read_safetensors(unipool::train_state_path(before));
  const auto ta = unipool::read_safetensors(unipool::train_state_path(after));
  for (const char* w : {"pool.w_gate", "pool.w_up", "pool.w_down"}) {
    for (size_t j = 0; j < keep_global.size(); ++j) {
      QVERIFY(row(ma, w, int64_t(j)) == row(mb, w, keep_global[j]));
      for (const char* m : {"exp_avg.", "exp_avg_sq."}) {
        const auto moment = row(tb, std::string(m) + w, keep_global[j]);
        QVERIFY(rms(moment) > 0);  // a trained moment, so equality means it was carried over
        QVERIFY(row(ta, std::string(m) + w, int64_t(j)) == moment);
      }
    }
  }
  for (size_t l = 0; l < keep_per_layer.size(); ++l) {
    const std::string name = "layers." + std::to_string(l) + ".router.weight";
    for (size_t j = 0; j < keep_per_layer[l].size(); ++j) {
      QVERIFY(row(ma, name, int64_t(j)) == row(mb, name, keep_per_layer[l][j]));
      QVERIFY(row(ta, "exp_avg." + name, int64_t(j)) ==
              row(tb, "exp_avg." + name, keep_per_layer[l][j]));
    }
  }
}

void expect_pool_shapes(const std::string& path, int mg) {
  const unipool::CheckpointInfo info = unipool::inspect_checkpoint(path);
  QCOMPARE(info.config.experts_per_group, mg);
  const int64_t N = int64_t(info.config.n_groups()) * mg, d = info.config.d_model,
                h = info.config.expert_hidden;
  for (const auto& t : info.tensors) {
    if (t.name == "pool.w_gate" || t.name == "pool.w_up")
      QCOMPARE(t.shape, (std::vector<int64_t>{N, h, d}));
    if (t.name == "pool.w_down") QCOMPARE(t.shape, (std::vector<int64_t>{N, d, h}));
    if (t.name.find("router.weight") != std::string::npos)
      QCOMPARE(t.shape, (std::vector<int64_t>{mg, d}));
  }
}

void train_finite(Engine& e, int steps) {
  const int64_t start = e.step();
  for (int i = 0; i < steps; ++i) {
    const StepMetrics m = e.train_step();
    QVERIFY(m.applied && std::isfinite(m.loss));
  }
  QCOMPARE(e.step(), start + steps);
}

}  // namespace

class TestTraining : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void lossFalls() {
    auto e = tiny(150);
    const double valid_before = e->evaluate_validation(8).loss;
    std::vector<double> ce;
    for (int i = 0; i < 150; ++i) {
      const StepMetrics m = e->train_step();
      QVERIFY(m.applied);
      QCOMPARE(m.step, int64_t(i + 1));
      QCOMPARE(m.lr, unipool::learning_rate_at(e->options(), i));
      QVERIFY(std::abs(m.loss - (m.ce + m.aux + m.z_loss)) < 1e-5);
      ce.push_back(m.ce);
    }
    double last = 0;
    for (int i = 140; i < 150; ++i) last += ce[size_t(i)] / 10;
    QVERIFY2(last <= ce[0] - 1.0,
             qPrintable(QString("first %1, last ten %2").arg(ce[0]).arg(last)));
    QVERIFY(e->evaluate_validation(8).loss < valid_before - 0.5);
  }

  void reproducible() {
    auto a = tiny(50), b = tiny(50), c = tiny(50, 99);
    b->set_collect_stats(false);  // statistics must not change the computation
    bool differs = false;
    for (int i = 0; i < 8; ++i) {
      const StepMetrics ma = a->train_step(), mb = b->train_step(), mc = c->train_step();
      QCOMPARE(ma.loss, mb.loss);  // bit for bit
      QCOMPARE(ma.grad_norm, mb.grad_norm);
      differs |= ma.loss != mc.loss;
    }
    QVERIFY(differs);
  }

  void resumeEqualsStraightRun() {
    QTemporaryDir dir;
    const std::string a = dir.filePath("a.safetensors").toStdString();
    const std::string b = dir.filePath("b.safetensors").toStdString();
    const std::string c = dir.filePath("c.safetensors").toStdString();
    std::vector<double> resumed, straight;
    {
      auto e = tiny(40);
      for (int i = 0; i < 20; ++i) resumed.push_back(e->train_step().loss);
      e->save(a);
    }
    auto r = Engine::open(a, true);
    QCOMPARE(r->step(), int64_t(20));
    QCOMPARE(r->options().total_steps, 40);
    QCOMPARE(r->data().builtin_bytes, int64_t(300000));
    for (int i = 0; i < 20; ++i) resumed.push_back(r->train_step().loss);
    r->save(b);
    auto s = tiny(40);
    for (int i = 0; i < 40; ++i) straight.push_back(s->train_step().loss);
    s->save(c);
    QCOMPARE(resumed, straight);
    QVERIFY(file_bytes(QString::fromStdString(b)) == file_bytes(QString::fromStdString(c)));
    QVERIFY(file_bytes(QString::fromStdString(unipool::train_state_path(b))) ==
            file_bytes(QString::fromStdString(unipool::train_state_path(c))));
    QVERIFY(!file_bytes(QString::fromStdString(b)).isEmpty());
  }

  void growAndShrink() {
    QTemporaryDir dir;
    auto path = [&](const char* n) { return dir.filePath(n).toStdString(); };
    auto e = tiny(200);
    // Replica of the engine's busy-expert measure: per pool expert, counts summed over the
    // layers, decayed by 0.9 per step (training/engine_state.h: recent_load).
    std::vector<double> load(8, 0.0);
    auto step = [&] {
      const StepMetrics m = e->train_step();
      QVERIFY(m.applied && std::isfinite(m.loss));
      for (double& v : load) v *= 0.9;
      for (int l = 0; l < 2; ++l)
        for (int i = 0; i < m.routing.experts_per_group; ++i)
          load[size_t(i)] += double(m.routing.count(l, i));
    };
    for (int i = 0; i < 6; ++i) step();
    e->save(path("s0.safetensors"));

    const unipool::ResizeReport grow = e->resize_pool(12);
    QCOMPARE(grow.old_experts_per_group, 8);
    QCOMPARE(grow.new_experts_per_group, 12);
    QCOMPARE(int(grow.split.size()), 4);
    QVERIFY(grow.removed.empty());
    QCOMPARE(e->config().experts_per_group, 12);
    QCOMPARE(e->config().router_c, unipool::norm_router_constant(12, 1));
    QCOMPARE(e->step(), int64_t(6));
    e->save(path("s1.safetensors"));
    expect_pool_shapes(path("s1.safetensors"), 12);
    expect_rows_kept(path("s0.safetensors"), path("s1.safetensors"),
                     {{0, 1, 2, 3, 4, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6, 7}},
                     {0, 1, 2, 3, 4, 5, 6, 7});
    // A split expert is a near copy of its source; its moments start at zero.
    const auto m1 = unipool::read_safetensors(path("s1.safetensors"));
    const auto t1 = unipool::read_safetensors(unipool::train_state_path(path("s1.safetensors")));
    std::set<int> new_ids;
    for (const auto& [id, src] : grow.split) {
      QVERIFY(id >= 8 && id < 12 && src >= 0 && src < 8);
      new_ids.insert(id);
      const auto a = row(m1, "pool.w_gate", id), b = row(m1, "pool.w_gate", src);
      std::vector<float> diff(a.size());
      for (size_t i = 0; i < a.size(); ++i) diff[i] = a[i] - b[i];
      QVERIFY(rms(diff) > 0 && rms(diff) < 0.05 * rms(b));
      QCOMPARE(rms(row(t1, "exp_avg.pool.w_gate", id)), 0.0);
    }
    QCOMPARE(int(new_ids.size()), 4);
    load.resize(12, 0.0);
    for (int i = 0; i < 4; ++i) step();

    // Shrink to the 6 least loaded.
    e->save(path("s2.safetensors"));
    const unipool::ResizeReport shrink = e->resize_pool(6);
    QCOMPARE(int(shrink.removed.size()), 6);
    std::vector<int64_t> kept;
    double kept_min = 1e300, removed_max = -1;
    for (int i = 0; i < 12; ++i) {
      const bool gone =
          std::find(shrink.removed.begin(), shrink.removed.end(), i) != shrink.removed.end();
      if (gone) {
        removed_max = std::max(removed_max, load[size_t(i)]);
      } else {
        kept.push_back(i);
        kept_min = std::min(kept_min, load[size_t(i)]);
      }
    }
    QVERIFY2(removed_max <= kept_min + 1e-9,
             qPrintable(QString("%1 > %2").arg(removed_max).arg(kept_min)));
    QCOMPARE(e->step(), int64_t(10));
    e->save(path("s3.safetensors"));
    expect_pool_shapes(path("s3.safetensors"), 6);
    expect_rows_kept(path("s2.safetensors"), path("s3.safetensors"), {kept, kept}, kept);
    train_finite(*e, 2);

    // A named drop.
    e->save(path("s4.safetensors"));
    const unipool::ResizeReport named = e->resize_pool(5, {2});
    QCOMPARE(named.removed, std::vector<int>{2});
    e->save(path("s5.safetensors"));
    expect_pool_shapes(path("s5.safetensors"), 5);
    expect_rows_kept(path("s4.safetensors"), path("s5.safetensors"),
                     {{0, 1, 3, 4, 5}, {0, 1, 3, 4, 5}}, {0, 1, 3, 4, 5});
    train_finite(*e, 2);
    // Bad requests change nothing.
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->resize_pool(3, {0}));  // 2 must be named
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->resize_pool(6, {1}));  // not shrinking
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->resize_pool(4, {9}));  // no expert 9
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->resize_pool(0));
    QCOMPARE(e->config().experts_per_group, 5);
    QCOMPARE(e->step(), int64_t(14));
  }

  void resizeTwoPools() {
    unipool::ModelConfig c = unipool::preset("tiny").model;
    c.layers_per_group = 1;  // two pools of 4, one per layer
    c.experts_per_group = 4;
    unipool::refresh_router_constant(c);
    auto e = tiny(100, 1234, &c);
    train_finite(*e, 3);
    QTemporaryDir dir;
    const std::string before = dir.filePath("b.safetensors").toStdString(),
                      after = dir.filePath("a.safetensors").toStdString();
    e->save(before);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->resize_pool(3, {0, 1}));  // both from pool 0
    const unipool::ResizeReport r = e->resize_pool(3, {1, 6});
    QCOMPARE(r.removed, (std::vector<int>{1, 6}));
    e->save(after);
    expect_pool_shapes(after, 3);
    expect_rows_kept(before, after, {{0, 2, 3}, {0, 1, 3}}, {0, 2, 3, 4, 5, 7});
    train_finite(*e, 2);
  }

  void randomLayers() {
    auto e = tiny(100);
    train_finite(*e, 20);
    const std::string text = unipool::generate_builtin_corpus(4097, 99).text;
    const unipool::EvalResult learned = e->evaluate(text, 64);
    const unipool::EvalResult both = e->evaluate(text, 64, std::vector<bool>{true, true});
    QCOMPARE(both.n_targets, learned.n_targets);
    for (int l = 0; l < 2; ++l) {
      QVERIFY(layer_counts(both.routing, l) != layer_counts(learned.routing, l));
      QCOMPARE(layer_sum(both.routing, l), both.n_targets);
    }
    // A random layer spreads its tokens uniformly: chi-square, 7 degrees of freedom (0.9999
    // quantile about 30).
    double chi2 = 0;
    const double expect = double(both.n_targets) / 8;
    for (int64_t c : layer_counts(both.routing, 0))
      chi2 += (double(c) - expect) * (double(c) - expect) / expect;
    QVERIFY2(chi2 < 30, qPrintable(QString::number(chi2)));

    e->set_random_layers({false, true});
    QCOMPARE(e->random_layers(), (std::vector<bool>{false, true}));
    const unipool::EvalResult second = e->evaluate(text, 64);
    QCOMPARE(layer_counts(second.routing, 0),
             layer_counts(learned.routing, 0));  // before the switch
    QVERIFY(layer_counts(second.routing, 1) != layer_counts(learned.routing, 1));
    const unipool::EvalResult overridden = e->evaluate(text, 64, std::vector<bool>{false, false});
    QCOMPARE(overridden.loss, learned.loss);
    QCOMPARE(overridden.routing.counts, learned.routing.counts);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->set_random_layers({true}));

    // In training too: the same step of a twin engine routes differently.
    auto a = tiny(100), b = tiny(100);
    b->set_random_layers({true, true});
    const StepMetrics ma = a->train_step(), mb = b->train_step();
    QVERIFY(layer_counts(ma.routing, 0) != layer_counts(mb.routing, 0));
    QVERIFY(ma.loss != mb.loss);
  }

  void settings() {
    auto a = tiny(100), b = tiny(100);
    // aux_coef: same weights, batch and routes, so the aux term scales exactly.
    b->set_aux_coef(0.05);
    QCOMPARE(b->config().aux_coef, 0.05);
    const StepMetrics ma = a->train_step(), mb = b->train_step();
    QCOMPARE(ma.ce, mb.ce);
    QVERIFY(ma.aux > 0);
    QVERIFY2(std::abs(mb.aux / ma.aux - 5.0) < 1e-5, qPrintable(QString::number(mb.aux / ma.aux)));
    a->set_aux_coef(0.0);
    QCOMPARE(a->train_step().aux, 0.0);
    QVERIFY_THROWS_EXCEPTION(unipool::ConfigError, a->set_aux_coef(-1.0));
    QCOMPARE(a->config().aux_coef, 0.0);

    // Learning rate: the schedule's peak changes, the reported lr follows.
    a->set_learning_rate(1e-3);
    QCOMPARE(a->options().lr, 1e-3);
    unipool::TrainOptions o = a->options();
    QCOMPARE(a->train_step().lr, unipool::learning_rate_at(o, 2));
    a->set_total_steps(50);
    o.total_steps = 50;
    for (int i = 0; i < 10; ++i) a->train_step();
    QCOMPARE(a->train_step().lr, unipool::learning_rate_at(o, 13));
    QVERIFY_THROWS_EXCEPTION(unipool::ConfigError, a->set_learning_rate(-1.0));

    // top_k: recomputes the NormRouter constant; each token now makes two choices.
    const double c1 = b->config().router_c;
    b->set_top_k(2);
    QCOMPARE(b->config().top_k, 2);
    QCOMPARE(b->config().router_c, unipool::norm_router_constant(8, 2));
    QVERIFY(b->config().router_c != c1);
    const StepMetrics m2 = b->train_step();
    QVERIFY(m2.applied && std::isfinite(m2.loss));
    QCOMPARE(m2.routing.top_k, 2);
    for (int l = 0; l < 2; ++l) QCOMPARE(layer_sum(m2.routing, l), int64_t(8 * 64 * 2));
    const unipool::EvalResult r = b->evaluate(unipool::generate_builtin_corpus(1000, 5).text, 64);
    for (int l = 0; l < 2; ++l) QCOMPARE(layer_sum(r.routing, l), r.n_targets * 2);
    QVERIFY_THROWS_EXCEPTION(unipool::ConfigError, b->set_top_k(9));
    QVERIFY_THROWS_EXCEPTION(unipool::ConfigError, b->set_top_k(0));
    QCOMPARE(b->config().top_k, 2);
  }

  void expertInspection() {
    // expert_norms and expert_similarity against the pool tensors read back from a checkpoint.
    QTemporaryDir dir;
    const std::string path = dir.filePath("m.safetensors").toStdString();
    const unipool::Preset p = unipool::preset("tiny");
    Engine e(p.model, p.train, unipool::DataSpec{});
    e.train_step();
    e.save(path);
    const unipool::SafetensorsFile f = unipool::read_safetensors(path);
    const int N = e.config().n_experts();
    std::vector<std::vector<double>> flat(static_cast<size_t>(N));
    for (const char* name : {"pool.w_gate", "pool.w_up", "pool.w_down"}) {
      const unipool::TensorRecord* r = f.find(name);
      QVERIFY(r);
      const size_t per = size_t(r->numel()) / size_t(N);
      for (int n = 0; n < N; ++n)
        for (size_t i = 0; i < per; ++i) {
          float v;
          std::memcpy(&v, r->bytes.data() + (size_t(n) * per + i) * 4, 4);
          flat[size_t(n)].push_back(v);
        }
    }
    const std::vector<double> norms = e.expert_norms(), sim = e.expert_similarity();
    QCOMPARE(int(norms.size()), N);
    QCOMPARE(int(sim.size()), N * N);
    for (int a = 0; a < N; ++a) {
      double na = 0;
      for (double v : flat[size_t(a)]) na += v * v;
      QVERIFY(std::abs(norms[size_t(a)] - std::sqrt(na)) < 1e-9 * (1 + std::sqrt(na)));
      for (int b = 0; b < N; ++b) {
        double dot = 0, nb = 0;
        for (size_t i = 0; i < flat[size_t(a)].size(); ++i) {
          dot += flat[size_t(a)][i] * flat[size_t(b)][i];
          nb += flat[size_t(b)][i] * flat[size_t(b)][i];
        }
        QVERIFY(std::abs(sim[size_t(a * N + b)] - dot / std::sqrt(na * nb)) < 1e-9);
      }
    }
  }

  void openedModelNeedsData() {
    // A model opened without its training state has no text: a clear DataError, then training
    // works once a data source is given.
    QTemporaryDir dir;
    const std::string path = dir.filePath("m.safetensors").toStdString();
    const unipool::Preset p = unipool::preset("tiny");
    {
      Engine e(p.model, p.train, unipool::DataSpec{});
      e.train_step();
      e.save(path);
    }
    auto bare = Engine::open(path, false);
    QString msg = "no error";
    try {
      bare->train_step();
    } catch (const unipool::DataError& e) {
      msg = e.what();
    }
    QVERIFY2(msg.contains("no training text"), qPrintable(msg));
    auto fed = Engine::open(path, false, unipool::DataSpec{});
    QVERIFY(fed->train_step().applied);
  }

  void badDataSpec() {
    // "Throws ConfigError or DataError on bad input" (engine.h), naming the bad field.
    const unipool::Preset p = unipool::preset("tiny");
    const MemoryCap cap(size_t(2) << 30);
    for (int64_t bytes : {int64_t(-1), int64_t(0), int64_t(10)}) {
      unipool::DataSpec data;
      data.builtin_bytes = bytes;
      QString msg = "no error";
      try {
        Engine e(p.model, p.train, data);
      } catch (const unipool::ConfigError& e) {
        msg = e.what();
      } catch (const unipool::DataError& e) {
        msg = e.what();
      } catch (const std::exception& e) {
        msg = QString("other: ") + e.what();
      }
      QVERIFY2(msg != "no error" && !msg.startsWith("other"), qPrintable(msg));
      if (bytes < 0) QVERIFY2(msg.contains("builtin_bytes"), qPrintable(msg));
    }
    unipool::DataSpec missing;
    missing.path = "/no/such/dir/text.txt";
    QVERIFY_THROWS_EXCEPTION(unipool::DataError, Engine(p.model, p.train, missing));
  }

  void collectStats() {
    auto e = tiny(100);
    StepMetrics m = e->train_step();
    QCOMPARE(m.routing.tokens, int64_t(8 * 64));
    QCOMPARE(m.routing.n_domains, 5);
    int64_t labelled = 0;
    for (int64_t t : m.routing.domain_tokens) labelled += t;
    QCOMPARE(labelled, m.routing.tokens);  // every built-in byte has a domain
    for (int l = 0; l < 2; ++l) QCOMPARE(layer_sum(m.routing, l), int64_t(8 * 64));
    QVERIFY(m.routing.reuse_sum > 0 && m.routing.reuse_sum <= double(m.routing.tokens));
    e->set_collect_stats(false);
    m = e->train_step();
    QVERIFY(m.routing.empty());
    e->set_collect_stats(true);
    QVERIFY(!e->train_step().routing.empty());
  }
};

QTEST_APPLESS_MAIN(TestTraining)
#include "tst_training.moc"
