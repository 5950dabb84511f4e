// The experiments (unipool/experiments.h): the probe against plain evaluations and the CLI's
// `eval --random-layers`, and a sweep that is cancelled mid-run, resumed, and gives the same
// results and files as an unbroken one.
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <memory>

#include "unipool/engine.h"
#include "unipool/experiments.h"

using namespace unipool;

namespace {

QByteArray file_bytes(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

SweepSpec tiny_sweep() {
  SweepSpec s;
  s.preset = "tiny";
  s.pool_sizes = {4, 8};
  s.seeds = {1};
  s.steps = 12;
  s.batch = 4;
  s.seq = 32;
  s.data.builtin_bytes = 100000;
  s.curve_every = 5;
  return s;
}

}  // namespace

class TestExperiments : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void probeEqualsPlainEvaluations() {
    Preset p = preset("tiny");
    DataSpec data;
    data.builtin_bytes = 200000;
    Engine e(p.model, p.train, data);
    for (int i = 0; i < 30; ++i) e.train_step();
    const std::string text = e.validation_text().substr(0, 4000);
    const ProbeResult r = run_probe(e, "tiny", text, 64, 2);
    QCOMPARE(int(r.rows.size()), 1 + 2 + 2);  // none, layer 0..1, from 0..1
    const ProbeRow& none = r.rows[0];
    QCOMPARE(none.loss.size(), size_t(1));
    QCOMPARE(none.loss[0], e.evaluate(text, 64).loss);
    QCOMPARE(none.d_loss_mean, 0.0);
    for (const ProbeRow& row : r.rows) {
      if (row.kind == "none") continue;
      QCOMPARE(row.loss.size(), size_t(2));
      const std::vector<bool> random = row.kind == "layer"
                                           ? RandomLayers::toggled({false, false}, row.layer).layers
                                           : RandomLayers::from_layer(2, row.layer).layers;
      QCOMPARE(row.loss[0], e.evaluate(text, 64, random).loss);         // draw 0: as eval
      QCOMPARE(row.loss[1], e.evaluate(text, 64, random, -1, 1).loss);  // draw 1
      QVERIFY(row.loss[0] != row.loss[1]);                              // other draws
      const double mean = (row.loss[0] + row.loss[1]) / 2 - none.loss[0];
      QVERIFY(std::abs(row.d_loss_mean - mean) < 1e-12);
      QVERIFY(row.d_loss_std > 0);
    }
    // The round trip of the saved result.
    const ProbeResult back = probe_from_json(to_json(r));
    QCOMPARE(back.rows.size(), r.rows.size());
    QCOMPARE(back.rows[3].loss, r.rows[3].loss);
    QVERIFY(probe_csv(r).find("from 1") != std::string::npos);

    // And the CLI: `eval --random-layers 1` on the saved model is the probe's "layer 1".
    QTemporaryDir dir;
    const QString model = dir.filePath(QStringLiteral("m.safetensors"));
    const QString text_file = dir.filePath(QStringLiteral("t.txt"));
    e.save(model.toStdString());
    QFile t(text_file);
    QVERIFY(t.open(QIODevice::WriteOnly));
    t.write(text.data(), qint64(text.size()));
    t.close();
    QProcess cli;
    cli.start(qEnvironmentVariable("UNIPOOL_CLI"),
              {QStringLiteral("eval"), QStringLiteral("--checkpoint"), model,
               QStringLiteral("--text"), text_file, QStringLiteral("--seq"), QStringLiteral("64"),
               QStringLiteral("--random-layers"), QStringLiteral("1"), QStringLiteral("--json")});
    QVERIFY(cli.waitForFinished(60000));
    QCOMPARE(cli.exitCode(), 0);
    const double loss = QJsonDocument::fromJson(cli.readAllStandardOutput())
                            .object()[QStringLiteral("loss")]
                            .toDouble();
    QCOMPARE(loss, r.rows[2].loss[0]);  // rows: none, layer 0, layer 1, ...
  }

  // Cancelled in the middle of its second run, then resumed: the same results and files as
  // an unbroken sweep; the half-written run was redone, the finished one kept.
  void sweepResumesExactly() {
    QTemporaryDir a_dir, b_dir;
    const SweepSpec spec = tiny_sweep();
    SweepState a = open_sweep(a_dir.path().toStdString(), spec);
    QCOMPARE(a.runs.size(), size_t(3));  // mg4, mg8, vanilla
    run_sweep(a, 1);
    for (const SweepRun& r : a.runs) QVERIFY(r.done);

    SweepState b = open_sweep(b_dir.path().toStdString(), spec);
    QVERIFY_THROWS_EXCEPTION(Cancelled, run_sweep(b, 1, [](const SweepEvent& e) {
                               return !(e.run == 1 && e.step == 7);  // stop mid-run
                             }));
    QVERIFY(b.runs[0].done);
    QVERIFY(!b.runs[1].done);
    QVERIFY(!QFile::exists(b_dir.filePath(QStringLiteral("mg8-s1/metrics.json"))));
    // Reopened: run 0 is read back, run 1 is redone from scratch.
    SweepState resumed = open_sweep(b_dir.path().toStdString(), spec);
    QVERIFY(resumed.runs[0].done && !resumed.runs[1].done);
    int trained_steps = 0;
    run_sweep(resumed, 2, [&](const SweepEvent& e) {
      if (!e.finished) ++trained_steps;
      return true;
    });
    QCOMPARE(trained_steps, 2 * spec.steps);  // runs 1 and 2 only
    for (size_t i = 0; i < a.runs.size(); ++i) {
      QCOMPARE(resumed.runs[i].valid_loss, a.runs[i].valid_loss);
      QCOMPARE(resumed.runs[i].curve, a.runs[i].curve);
      const QString name = QString::fromStdString(a.runs[i].name) + "/model.safetensors";
      QCOMPARE(file_bytes(b_dir.filePath(name)), file_bytes(a_dir.filePath(name)));
    }
    const SweepState loaded = load_sweep(b_dir.path().toStdString());
    QCOMPARE(loaded.runs.size(), size_t(3));
    QVERIFY(loaded.runs[2].done);
    QCOMPARE(loaded.runs[2].kind, std::string("vanilla"));
    QCOMPARE(loaded.runs[0].budget, 0.25);
    // Another spec in the same folder is refused rather than mixed in.
    SweepSpec other = spec;
    other.steps = 13;
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, open_sweep(b_dir.path().toStdString(), other));
  }

  // --aux-coefs: each pool size at each coefficient; each run records its validation zero-gate
  // share per layer, and that share is the evaluation's own count (SPEC section 9).
  void auxGridRecordsZeroGateShares() {
    QTemporaryDir dir;
    SweepSpec spec = tiny_sweep();
    spec.pool_sizes = {4};
    spec.aux_coefs = {0.0, 0.5};
    spec.vanilla = false;
    SweepState st = open_sweep(dir.path().toStdString(), spec);
    QCOMPARE(st.runs.size(), size_t(2));
    QCOMPARE(st.runs[0].name, std::string("mg4-a0-s1"));
    QCOMPARE(st.runs[1].name, std::string("mg4-a0.5-s1"));
    run_sweep(st, 1);
    for (const SweepRun& r : st.runs) {
      QCOMPARE(r.zero_gate.size(), size_t(2));  // tiny: 2 layers
      // Checked against an evaluation of the saved model: the same counts.
      auto engine = Engine::open(dir.filePath(QString::fromStdString(r.name) + "/model.safetensors")
                                     .toStdString(),
                                 true, DataSpec{spec.data}, 0);  // resumed: its seq, its windows
      const EvalResult v = engine->evaluate_validation(kValidationWindows);
      QCOMPARE(v.loss, r.valid_loss);  // the same evaluation
      for (int l = 0; l < 2; ++l)
        QCOMPARE(r.zero_gate[size_t(l)], double(v.routing.zero_gate[size_t(l)]) / double(v.routing.tokens));
      QCOMPARE(r.zero_gate_all, (r.zero_gate[0] + r.zero_gate[1]) / 2);
    }
    QCOMPARE(st.runs[1].aux_coef, 0.5);
    // Reopened, the grid and the shares read back.
    const SweepState loaded = load_sweep(dir.path().toStdString());
    QCOMPARE(loaded.spec.aux_coefs, spec.aux_coefs);
    QCOMPARE(loaded.runs[1].zero_gate, st.runs[1].zero_gate);
    // A sweep.json without the key (written before the grid existed) reads as no grid.
    QVERIFY(QString::fromStdString(to_json(tiny_sweep())).indexOf(QStringLiteral("aux_coefs")) < 0);
    SweepSpec bad = spec;
    bad.aux_coefs = {-1.0};
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, plan_sweep(bad));
  }

  // --lock and --lock-random in a grid: one run per coefficient, each with the coefficient
  // and the model its kind names; the router options reach every run and sweep.json.
  void lockArmsFollowTheGrid() {
    SweepSpec spec;  // default preset: UniPool-lock is 48 experts, 8 per layer once locked
    spec.pool_sizes = {24};
    spec.aux_coefs = {0.01, 0.001};
    spec.lock = spec.lock_random = true;
    spec.router_init_std = 0.01;
    std::vector<std::string> names;
    for (const SweepRun& r : plan_sweep(spec)) names.push_back(r.name);
    QCOMPARE(names, (std::vector<std::string>{"mg24-a0.01-s1", "mg24-a0.001-s1", "vanilla-s1",
                                              "lock-a0.01-s1", "lock-a0.001-s1",
                                              "lock-random-a0.01-s1", "lock-random-a0.001-s1"}));
    for (const SweepRun& r : plan_sweep(spec))
      if (r.kind != "unipool") QCOMPARE(r.budget, 1.0);  // vanilla's budget, all three
    const SweepSpec back = sweep_spec_from_json(to_json(spec));
    QVERIFY(back.lock_random);
    QCOMPARE(back.router_init_std, 0.01);
    QCOMPARE(back.router_weight_decay, -1.0);
    QCOMPARE(to_json(back), to_json(spec));
    // Not set, the keys are absent: an older sweep.json reads back the same spec.
    const QString plain = QString::fromStdString(to_json(SweepSpec{}));
    QVERIFY(!plain.contains(QStringLiteral("lock_random")) &&
            !plain.contains(QStringLiteral("router_")));
  }

  void defaultPoolSizesAreThePapersFractions() {
    SweepSpec s;  // default preset: 6 layers, vanilla 48 experts
    const std::vector<SweepRun> runs = plan_sweep(s);
    std::vector<int> sizes;
    for (const SweepRun& r : runs)
      if (r.kind == "unipool") sizes.push_back(r.experts_per_group);
    QCOMPARE(sizes, (std::vector<int>{12, 20, 24, 32, 48}));
    QCOMPARE(runs.back().kind, std::string("vanilla"));
  }
};

QTEST_APPLESS_MAIN(TestExperiments)
#include "tst_experiments.moc"
