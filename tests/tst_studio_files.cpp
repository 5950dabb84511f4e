// The studio and files, offscreen: checkpoints saved, opened, resumed and inspected; bad files
// and a non-finite loss give a dialog and lose nothing; exports, settings, and the unattended
// screenshot mode.
#include <qcustomplot.h>

#include <QFile>
#include <QLineEdit>
#include <QProcess>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <memory>

#include "studio_window_util.h"
#include "unipool/safetensors.h"
#include "views/checkpoint_inspector_view.h"
#include "views/controls_panel.h"
#include "views/domain_view.h"
#include "views/live_controls.h"
#include "views/loss_curves_view.h"
#include "views/main_window.h"
#include "views/new_run_form.h"
#include "views/routing_heatmap_view.h"

using namespace unipool;
using namespace unipool::studio;
using studio_test::train;
using studio_test::wait_until;

using studio_test::close_dialogs;
using studio_test::colour_count;
using studio_test::error_dialog;
using studio_test::tiny_window;

class TestStudioFiles : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }
  void cleanup() { close_dialogs(); }

  // Watching a run the studio does not host (File > Watch Run): it is read-only here, so
  // Start, Step and Reset are off; the run is shown as the log has it.
  void watchedRunCannotBeReset() {
    QTemporaryDir dir;
    const QString log = dir.filePath("run.jsonl");
    QProcess p;
    p.start(qEnvironmentVariable("UNIPOOL_CLI"),
            {"train", "--preset", "tiny", "--steps", "6", "--quiet", "--log", log});
    QVERIFY(p.waitForFinished(120000) && p.exitCode() == 0);
    MainWindow w;
    w.show();
    w.session()->watchRun(log);
    QVERIFY(wait_until([&] { return w.session()->history().lastStep() == 6; }));
    LiveControls* live = w.controls()->live();
    QVERIFY(w.session()->state().watching);
    QVERIFY(!live->resetButton()->isEnabled());
    QVERIFY(!live->startButton()->isEnabled());
    QVERIFY(!live->stepButton()->isEnabled());
  }

  // Runs made elsewhere than the form (a lesson, a recipe, Reset) show in it: their settings
  // and their preset: the one they were made from, else the preset whose model they are,
  // else "custom".
  void newRunFormNamesTheRunsPreset() {
    MainWindow w;
    w.show();
    RunSession* s = w.session();
    NewRunForm* form = w.controls()->form();
    auto create = [&](const Preset& p, const QString& label) {
      TrainOptions o = p.train;
      o.batch = 2;
      o.seq = 32;
      const uint64_t before = s->state().run_serial;
      s->post(cmd::CreateRun{p.model, o, DataSpec{}, label});
      QVERIFY(wait_until([&] { return s->state().run_serial != before; }));
    };
    create(preset("grouped"), QStringLiteral("grouped"));  // a lesson labels with its preset
    QCOMPARE(form->shownPreset(), QStringLiteral("grouped"));
    create(preset("vanilla"), QStringLiteral("demo.unipool.json"));  // a recipe: by its model
    QCOMPARE(form->shownPreset(), QStringLiteral("vanilla"));
    QCOMPARE(form->formConfig().router, std::string("softmax"));
    Preset odd = preset("default");
    odd.model.experts_per_group = 10;
    create(odd, QStringLiteral("demo.unipool.json"));
    QCOMPARE(form->shownPreset(), QString());  // custom
    QCOMPARE(form->formConfig().experts_per_group, 10);
    create(preset("default"), QStringLiteral("default"));  // the same label as before: still news
    QCOMPARE(form->shownPreset(), QStringLiteral("default"));
    QCOMPARE(form->formConfig().experts_per_group, 24);
  }

  void settingsAreRemembered() {
    {
      MainWindow w;
      w.show();
      w.loss()->setSmoothing(0.31);
      w.heatmap()->setMode(RoutingHeatmapView::GateMass);
      w.close();
    }
    MainWindow w;
    QCOMPARE(w.loss()->smoothing(), 0.31);
    QCOMPARE(w.heatmap()->mode(), RoutingHeatmapView::GateMass);
    w.loss()->setSmoothing(0.6);
    w.heatmap()->setMode(RoutingHeatmapView::Share);
    w.close();
  }

  void nonFiniteLossPausesAndKeepsTheWeights() {
    // A model whose lm_head is finite but huge (+-3e38) overflows its logits on the first
    // step: the checkpoint is valid, the loss is not.
    QTemporaryDir dir;
    const QString good = dir.filePath(QStringLiteral("good.safetensors"));
    const QString huge = dir.filePath(QStringLiteral("huge.safetensors"));
    {
      auto w = tiny_window();
      QSignalSpy saved(w->session(), &RunSession::saved);
      w->saveCheckpoint(good);
      QVERIFY(saved.wait(10000));
    }
    SafetensorsFile f = read_safetensors(good.toStdString());
    for (TensorRecord& t : f.tensors) {
      if (t.name != "lm_head.weight") continue;
      auto* v = reinterpret_cast<float*>(t.bytes.data());
      for (int64_t i = 0; i < t.numel(); ++i) v[i] = (i % 2 ? 3.0e38f : -3.0e38f);
    }
    write_safetensors_atomic(huge.toStdString(), f.metadata, f.tensors);

    MainWindow w;
    w.show();
    RunSession* s = w.session();
    QVERIFY(w.openCheckpoint(huge));
    QVERIFY(wait_until([&] { return s->state().valid; }));
    const int64_t step = s->state().step;
    QSignalSpy halted(s, &RunSession::halted);
    s->post(cmd::Start{});
    QVERIFY(wait_until([&] { return halted.count() > 0 && !s->isRunning(); }));
    QVERIFY(halted.at(0).at(0).toString().contains(QStringLiteral("non-finite")));
    QVERIFY(error_dialog() != nullptr);
    // The skipped step changed nothing: same step, no point on the curves, a marker instead.
    QTest::qWait(200);
    QCOMPARE(s->state().step, step);
    QVERIFY(s->history().points().empty());
    QCOMPARE(s->history().changes().back().kind, ChangeEvent::Halted);
    // Saving keeps the last good weights: the file reads back unchanged.
    const QString after = dir.filePath(QStringLiteral("after.safetensors"));
    QSignalSpy saved(s, &RunSession::saved);
    w.saveCheckpoint(after);
    QVERIFY(saved.wait(10000));
    const SafetensorsFile back = read_safetensors(after.toStdString());
    QVERIFY(back.find("lm_head.weight")->bytes == f.find("lm_head.weight")->bytes);
  }

  void badCheckpointsGiveADialog() {
    auto w = tiny_window();
    QTemporaryDir dir;
    const QString garbage = dir.filePath(QStringLiteral("garbage.safetensors"));
    QFile f(garbage);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("this is not a checkpoint at all");
    f.close();
    const RunState before = w->session()->state();
    QVERIFY(!w->openCheckpoint(garbage));
    QVERIFY(error_dialog() != nullptr);
    QVERIFY(w->lastError().contains(QStringLiteral("garbage.safetensors")));
    close_dialogs();
    QVERIFY(!w->openCheckpoint(dir.filePath(QStringLiteral("missing.safetensors"))));
    QVERIFY(error_dialog() != nullptr);
    close_dialogs();
    // The run that was open is untouched and still trains.
    QCOMPARE(w->session()->state().source, before.source);
    QVERIFY(train(*w->session(), 2));

    // A real checkpoint cut short: the header reads, the tensors do not.
    const QString good = dir.filePath(QStringLiteral("run.safetensors"));
    QSignalSpy saved(w->session(), &RunSession::saved);
    w->saveCheckpoint(good);
    QVERIFY(saved.wait(10000));
    QFile cut(good);
    QVERIFY(cut.open(QIODevice::ReadWrite));
    QVERIFY(cut.resize(cut.size() / 2));
    cut.close();
    QSignalSpy failed(w->inspector(), &CheckpointInspectorView::failed);
    w->inspector()->open(good);
    QVERIFY(failed.wait(20000));
    QVERIFY(error_dialog() != nullptr);
  }

  void saveOpenResumeAndInspect() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("tiny.safetensors"));
    int64_t saved_step = 0;
    {
      auto w = tiny_window();
      QVERIFY(train(*w->session(), 12));
      saved_step = w->session()->state().step;
      QSignalSpy saved(w->session(), &RunSession::saved);
      w->saveCheckpoint(path);
      QVERIFY(saved.wait(10000));
      QVERIFY(w->recentFiles().contains(QFileInfo(path).absoluteFilePath()));
    }
    MainWindow w;
    w.show();
    QSignalSpy ready(w.inspector(), &CheckpointInspectorView::reportReady);
    QVERIFY(w.openCheckpoint(path));
    QVERIFY(wait_until([&] { return w.session()->state().valid; }));
    QCOMPARE(w.session()->state().step, saved_step);  // resumed where it stopped
    QVERIFY(train(*w.session(), 3));
    QCOMPARE(w.session()->state().step, saved_step + 3);

    QVERIFY(wait_until([&] { return ready.count() > 0; }, 20000));
    const CheckpointReport& r = w.inspector()->report();
    QCOMPARE(r.info.config, preset("tiny").model);
    QCOMPARE(r.info.step, saved_step);
    QCOMPARE(int(r.expert_norms.size()), 8);
    for (int e = 0; e < 8; ++e) QVERIFY(std::abs(r.expert_similarity[size_t(e * 9)] - 1) < 1e-9);
    QCOMPARE(w.inspector()->tensorTable()->rowCount(), int(r.info.tensors.size()));
    QVERIFY(w.inspector()->summaryText().contains(QStringLiteral("of the equivalent vanilla")));
    QVERIFY(r.validation.routing.tokens > 0);
    w.tabs()->setCurrentWidget(w.inspector());
    QVERIFY(colour_count(w.inspector()->similarityPlot()) > 5);
  }

  void exportsWriteFiles() {
    auto w = tiny_window();
    QVERIFY(train(*w->session(), 8));
    QTemporaryDir dir;
    const QList<QPair<QString, QByteArray>> formats = {{QStringLiteral("png"), "\x89PNG"},
                                                       {QStringLiteral("pdf"), "%PDF"},
                                                       {QStringLiteral("svg"), "<?xml"}};
    for (const QString& plot : {QStringLiteral("heatmap"), QStringLiteral("loss")}) {
      for (const auto& [suffix, magic] : formats) {
        const QString path = dir.filePath(plot + QLatin1Char('.') + suffix);
        QVERIFY2(w->exportPlot(plot, path), qPrintable(w->lastError()));
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY2(f.read(magic.size()) == magic, qPrintable(path));
        QVERIFY(f.size() > 500);
      }
    }
    QVERIFY(!w->exportPlot(QStringLiteral("heatmap"), dir.filePath(QStringLiteral("x.bmpx"))));
    QVERIFY(error_dialog() != nullptr);
    close_dialogs();
    const QString csv = dir.filePath(QStringLiteral("m.csv"));
    QVERIFY(w->exportMetricsCsv(csv));
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll().count('\n'), 1 + 8);
    QVERIFY(w->exportMetricsJson(dir.filePath(QStringLiteral("m.json"))));
    QVERIFY(!w->exportMetricsCsv(dir.filePath(QStringLiteral("no/such/dir/m.csv"))));
  }

  void screenshotModeRunsUnattended() {
    const QString studio = qEnvironmentVariable("UNIPOOL_STUDIO");
    QVERIFY(!studio.isEmpty());
    QTemporaryDir dir;
    const QString shot = dir.filePath(QStringLiteral("shot.png"));
    QProcess p;
    p.start(studio,
            {QStringLiteral("--preset"), QStringLiteral("tiny"), QStringLiteral("--train-steps"),
             QStringLiteral("15"), QStringLiteral("--screenshot"), shot, QStringLiteral("--quit")});
    QVERIFY(p.waitForFinished(120000));
    QCOMPARE(p.exitCode(), 0);
    QImage img(shot);
    QVERIFY(!img.isNull());
    QVERIFY(img.width() > 800 && img.height() > 500);

    // Half-way, layer 1 goes random: the metrics record the change at step 5.
    const QString metrics = dir.filePath(QStringLiteral("m.csv"));
    p.start(studio,
            {QStringLiteral("--preset"), QStringLiteral("tiny"), QStringLiteral("--train-steps"),
             QStringLiteral("10"), QStringLiteral("--random-from"), QStringLiteral("1"),
             QStringLiteral("--metrics"), metrics, QStringLiteral("--quit")});
    QVERIFY(p.waitForFinished(120000));
    QCOMPARE(p.exitCode(), 0);
    QFile csv(metrics);
    QVERIFY(csv.open(QIODevice::ReadOnly));
    const QByteArray text = csv.readAll();
    QCOMPARE(text.count('\n'), 1 + 10 + 1);  // header, 10 steps, the change
    QVERIFY2(text.contains("# 5 random_routing random: L1"), text.right(200).constData());
    p.start(studio,
            {QStringLiteral("--random-from"), QStringLiteral("-2"), QStringLiteral("--quit")});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 2);

    p.start(studio,
            {QStringLiteral("--preset"), QStringLiteral("nonsense"), QStringLiteral("--quit")});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 2);
    QVERIFY(p.readAllStandardError().contains("unknown preset"));

    p.start(studio, {QStringLiteral("--open"), dir.filePath(QStringLiteral("none.safetensors")),
                     QStringLiteral("--quit")});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 1);
  }

  // Training on the user's own text: an empty file is refused with a message naming the
  // problem and the current run stays; a real file trains, with no domains to show.
  void trainOnAUsersText() {
    auto w = tiny_window();
    QTemporaryDir dir;
    const QString empty = dir.filePath(QStringLiteral("empty.txt"));
    QFile(empty).open(QIODevice::WriteOnly);
    auto* data = w->controls()->findChild<QLineEdit*>(QStringLiteral("dataPath"));
    QVERIFY(data);
    w->controls()->form()->loadPreset(QStringLiteral("tiny"));
    data->setText(empty);
    QSignalSpy failed(w->session(), &RunSession::failed);
    w->controls()->form()->createRunFromForm();
    QVERIFY(failed.wait(10000));
    QVERIFY2(failed.at(0).at(1).toString().contains(QStringLiteral("empty")),
             qPrintable(failed.at(0).at(1).toString()));
    QVERIFY(error_dialog() != nullptr);
    close_dialogs();
    QVERIFY(w->session()->state().data_path.empty());  // still the built-in run

    const QString text = dir.filePath(QStringLiteral("story.txt"));
    QFile f(text);
    QVERIFY(f.open(QIODevice::WriteOnly));
    for (int i = 0; i < 2000; ++i) f.write("The cat sat on the mat and looked at the moon. ");
    f.close();
    data->setText(text);
    w->controls()->form()->createRunFromForm();
    QVERIFY(wait_until([&] { return w->session()->state().data_path == text.toStdString(); }));
    QVERIFY(w->session()->state().domain_names.empty());
    QVERIFY(train(*w->session(), 3));
    QVERIFY(std::isnan(w->domains()->value(0, 0)));
  }
};

QTEST_MAIN(TestStudioFiles)
#include "tst_studio_files.moc"
