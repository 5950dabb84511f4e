// The studio when the user is quicker than the engine: a new run or a checkpoint while
// training, settings typed while updates stream in, a bad form, a file that fails half-way.
// Each case once lost data or crashed; the test names say what must hold instead.
#include <qcustomplot.h>

#include <QApplication>
#include <QDoubleSpinBox>
#include <QFile>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <memory>

#include "studio_window_util.h"
#include "views/checkpoint_inspector_view.h"
#include "views/controls_panel.h"
#include "views/main_window.h"
#include "views/new_run_form.h"
#include "views/routing_heatmap_view.h"
#include "views/token_inspector_view.h"

using namespace unipool;
using namespace unipool::studio;
using studio_test::close_dialogs;
using studio_test::tiny_window;
using studio_test::train;
using studio_test::wait_until;

namespace {

// Trains until the history has `steps` more points and leaves the run going.
bool start_and_wait(RunSession& s, int64_t steps) {
  s.post(cmd::Start{});
  const int64_t target = s.history().lastStep() + steps;
  return wait_until([&] { return s.history().lastStep() >= target; });
}

}  // namespace

class TestStudioRaces : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }
  void cleanup() { close_dialogs(); }

  // Two quick clicks on two rows' random-routing switches (the heatmap labels), the second
  // before the first one's new state reached the window: both land, because the worker flips
  // each layer in the engine's set as it is then (a vector built from the window's copy lost
  // the first click).
  void twoQuickTogglesBothLand() {
    auto w = tiny_window();
    RunSession* s = w->session();
    QVERIFY(wait_until([&] { return s->state().valid; }));
    QCOMPARE(s->state().random_layers, (std::vector<bool>{false, false}));
    QCustomPlot* heat = w->heatmap()->plot();
    heat->replot();
    for (int layer : {0, 1}) {
      const QPoint label(heat->axisRect()->left() / 2,
                         int(heat->yAxis->coordToPixel(double(layer))));
      QTest::mouseClick(heat, Qt::LeftButton, Qt::NoModifier, label);  // no wait between
    }
    QVERIFY(wait_until([&] {
      return s->state().random_layers == std::vector<bool>{true, true};
    }));
    s->post(cmd::ToggleRandomLayer{0});
    s->post(cmd::ToggleRandomLayer{0});
    s->post(cmd::ToggleRandomLayer{1});
    s->waitForIdle();
    QVERIFY(wait_until([&] {
      return s->state().random_layers == std::vector<bool>{true, false};
    }));
  }

  // The old run's last update, sent when the worker pauses for the new run, must not land in
  // the new run's history.
  void newRunWhileTrainingStartsAnEmptyHistory() {
    auto w = tiny_window();
    RunSession* s = w->session();
    QVERIFY(start_and_wait(*s, 10));
    s->post(unipool::LearningRate{1e-3});  // a marker in the old run
    studio_test::create_tiny(*s);
    s->waitForIdle();
    QVERIFY(wait_until([&] { return !s->isRunning() && s->state().step == 0; }));
    QTest::qWait(100);
    QCOMPARE(s->history().points().size(), size_t(0));
    QCOMPARE(s->history().changes().size(), size_t(0));
    QCOMPARE(s->history().lastStep(), int64_t(0));
    QVERIFY(s->history().latestRouting().empty());
  }

  // A checkpoint that fails to open leaves the current run, and so its history, as it was.
  void failedOpenKeepsTheRunsHistory() {
    auto w = tiny_window();
    RunSession* s = w->session();
    QVERIFY(train(*s, 6));
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("cut.safetensors"));
    QSignalSpy saved(s, &RunSession::saved);
    w->saveCheckpoint(path);
    QVERIFY(saved.wait(10000));
    // The model file reads; the training state beside it, which the worker loads, does not.
    QFile cut(QString::fromStdString(train_state_path(path.toStdString())));
    QVERIFY(cut.open(QIODevice::ReadWrite));
    QVERIFY(cut.resize(cut.size() / 2));
    cut.close();
    QSignalSpy failed(s, &RunSession::failed);
    QVERIFY(w->openCheckpoint(path));
    QVERIFY(failed.wait(20000));
    QCOMPARE(s->history().points().size(), size_t(6));
  }

  // A form the engine rejects (top-k above the pool size) is reported, not thrown into Qt.
  void invalidFormGivesADialog() {
    auto w = tiny_window();
    ControlsPanel* c = w->controls();
    c->form()->loadPreset(QStringLiteral("tiny"));
    c->findChild<QSpinBox*>(QStringLiteral("poolSize"))->setValue(2);
    c->findChild<QSpinBox*>(QStringLiteral("topK"))->setValue(4);
    QSignalSpy failed(w->session(), &RunSession::failed);
    c->form()->createRunFromForm();
    QVERIFY(failed.wait(10000));
    QVERIFY(failed.at(0).at(1).toString().contains(QStringLiteral("top_k")));
  }

  // A value typed into a live box survives the ~20 updates a second that training sends,
  // until the user applies it.
  void typedLiveValueSurvivesUpdates() {
    auto w = tiny_window();
    RunSession* s = w->session();
    auto* lr = w->controls()->findChild<QDoubleSpinBox*>(QStringLiteral("liveLearningRate"));
    QVERIFY(lr);
    QVERIFY(start_and_wait(*s, 2));
    lr->setValue(0.0123);  // as if typed, then the focus moved to the Set button
    QVERIFY(start_and_wait(*s, 10));
    QCOMPARE(lr->value(), 0.0123);
    s->post(cmd::Pause{});
  }

  // Save after a new run must not write it over the checkpoint opened before.
  void saveAfterNewRunDoesNotReuseTheOpenedFile() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("a.safetensors"));
    auto w = tiny_window();
    QSignalSpy saved(w->session(), &RunSession::saved);
    w->saveCheckpoint(path);
    QVERIFY(saved.wait(10000));
    QVERIFY(w->openCheckpoint(path));
    QVERIFY(wait_until([&] { return w->session()->state().source == path; }));
    QCOMPARE(w->currentPath(), path);
    studio_test::create_tiny(*w->session());
    QVERIFY(wait_until([&] { return w->session()->state().source != path; }));
    QVERIFY(w->currentPath().isEmpty());
    // Reset gives fresh weights: they are not the opened file either.
    QVERIFY(w->openCheckpoint(path));
    QVERIFY(wait_until([&] { return w->currentPath() == path; }));
    for (QPushButton* b : w->controls()->findChildren<QPushButton*>())
      if (b->text() == QLatin1String("Reset")) b->click();
    QVERIFY(wait_until([&] { return w->session()->state().source != path; }));
    QVERIFY(w->currentPath().isEmpty());
  }

  // Scrubbed back in history, then a new run: the heatmap must not keep the old run's map.
  void scrubbedHeatmapFollowsANewRun() {
    auto w = tiny_window();
    RunSession* s = w->session();
    QVERIFY(train(*s, 25));
    w->heatmap()->showSnapshot(0);
    QVERIFY(!w->heatmap()->shownCounts().empty());
    studio_test::create_tiny(*s);
    QVERIFY(wait_until([&] { return s->history().points().empty(); }));
    QVERIFY(wait_until([&] { return w->heatmap()->shownCounts().empty(); }, 2000));
  }

  // A long continuation is generated in chunks: closing the window mid-way waits for one.
  void closingDuringGenerateIsQuick() {
    auto w = tiny_window();
    QSignalSpy generated(w->session(), &RunSession::generated);
    GenerateOptions o;
    o.tokens = 2000;
    QElapsedTimer t;
    t.start();
    w->session()->post(cmd::RequestGenerate{QStringLiteral("The "), o});
    QTest::qWait(200);
    w->close();
    w.reset();
    QCOMPARE(generated.count(), 0);
    QVERIFY2(t.elapsed() < 1500, qPrintable(QString::number(t.elapsed())));
  }

  // Text cut to the grid's width keeps whole UTF-8 characters.
  void longNonAsciiTextIsCutOnACharacter() {
    auto w = tiny_window();
    TokenInspectorView* tok = w->tokens();
    QSignalSpy routes(w->session(), &RunSession::routesReady);
    tok->setText(QString(TokenInspectorView::kMaxBytes - 1, QLatin1Char('a')) +
                 QStringLiteral("ééé"));
    tok->route();
    QVERIFY(routes.wait(10000));
    QCOMPARE(tok->routes().n_tokens, int64_t(TokenInspectorView::kMaxBytes - 1));
  }

  // The window reads a file's header before opening it, so the run and the inspector fail
  // on the same file only when it changes on disk in between; each may then report it. The
  // user sees one dialog per file, not one per report.
  void oneDialogPerFailedFile() {
    auto w = tiny_window();
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("run.safetensors"));
    QSignalSpy saved(w->session(), &RunSession::saved);
    w->saveCheckpoint(path);
    QVERIFY(saved.wait(10000));
    QVERIFY(w->openCheckpoint(path));
    QVERIFY(wait_until([&] { return w->session()->state().source == path; }));
    Q_EMIT w->inspector()->failed(path, QStringLiteral("changed on disk"));
    Q_EMIT w->session()->failed(QStringLiteral("Open checkpoint"), QStringLiteral("changed"));
    Q_EMIT w->inspector()->failed(path, QStringLiteral("changed on disk"));
    QCoreApplication::processEvents();
    auto dialogs = [] {
      int n = 0;
      for (QWidget* top : QApplication::topLevelWidgets())
        n += qobject_cast<QMessageBox*>(top) && top->isVisible();
      return n;
    };
    QCOMPARE(dialogs(), 1);
    close_dialogs();
    // Opening it again is a new attempt: its failure is reported again.
    QVERIFY(w->openCheckpoint(path));
    Q_EMIT w->inspector()->failed(path, QStringLiteral("changed on disk"));
    QCoreApplication::processEvents();
    QCOMPARE(dialogs(), 1);
  }

  // Reset while training: a fresh model of the same shape, at step 0, paused, empty history.
  void resetWhileTraining() {
    auto w = tiny_window();
    RunSession* s = w->session();
    QVERIFY(start_and_wait(*s, 8));
    const ModelConfig config = s->state().config;
    w->findChild<QPushButton*>(QStringLiteral("reset"))->click();
    QVERIFY(wait_until([&] { return !s->isRunning() && s->state().step == 0; }));
    QTest::qWait(100);
    QCOMPARE(s->state().config, config);
    QVERIFY(s->history().points().empty());
    QVERIFY(train(*s, 2));  // and it trains
  }

  // The live top-k and pool-size boxes reach the engine through their buttons; a pool
  // smaller than top-k is refused with a dialog and the run keeps its pool.
  void liveTopKAndPoolSizeButtons() {
    auto w = tiny_window();
    RunSession* s = w->session();
    ControlsPanel* c = w->controls();
    c->findChild<QSpinBox*>(QStringLiteral("liveTopK"))->setValue(2);
    c->findChild<QPushButton*>(QStringLiteral("setTopK"))->click();
    QVERIFY(wait_until([&] { return s->state().config.top_k == 2; }));
    QSignalSpy failed(s, &RunSession::failed);
    c->findChild<QSpinBox*>(QStringLiteral("livePoolSize"))->setValue(1);
    c->findChild<QPushButton*>(QStringLiteral("resizePool"))->click();
    QVERIFY(failed.wait(10000));
    QCOMPARE(s->state().config.experts_per_group, 8);
    QVERIFY(studio_test::error_dialog() != nullptr);
    close_dialogs();
    c->findChild<QSpinBox*>(QStringLiteral("livePoolSize"))->setValue(12);
    c->findChild<QPushButton*>(QStringLiteral("resizePool"))->click();
    QVERIFY(wait_until([&] { return s->state().config.experts_per_group == 12; }));
    QVERIFY(train(*s, 2));
    QCOMPARE(w->heatmap()->shownCounts().n_experts(), 12);
  }

  // The z-loss coefficient's row: the engine takes it, the loss curves get its marker, and
  // the next steps carry a z-loss (0 before: the tiny preset has none).
  void liveZLossButton() {
    auto w = tiny_window();
    RunSession* s = w->session();
    ControlsPanel* c = w->controls();
    QCOMPARE(s->state().config.z_coef, 0.0);
    c->findChild<QDoubleSpinBox*>(QStringLiteral("liveZCoef"))->setValue(0.01);
    c->findChild<QPushButton*>(QStringLiteral("setZCoef"))->click();
    QVERIFY(wait_until([&] { return s->state().config.z_coef == 0.01; }));
    QVERIFY(!s->history().changes().empty());
    QCOMPARE(s->history().changes().back().kind, QStringLiteral("z_coef"));
    QCOMPARE(s->history().changes().back().text, QStringLiteral("z 0.01"));
    QVERIFY(train(*s, 2));
    const StepPoint& p = s->history().points().back();
    QVERIFY2(p.loss - p.ce - p.aux > 1e-3, "the step's loss has a z-loss term");
    // A negative coefficient is refused and the run keeps 0.01.
    QSignalSpy failed(s, &RunSession::failed);
    c->findChild<QDoubleSpinBox*>(QStringLiteral("liveZCoef"))->setMinimum(-1);
    c->findChild<QDoubleSpinBox*>(QStringLiteral("liveZCoef"))->setValue(-1);
    c->findChild<QPushButton*>(QStringLiteral("setZCoef"))->click();
    QVERIFY(failed.wait(10000));
    QCOMPARE(failed.at(0).at(0).toString(), QStringLiteral("Z-loss coefficient"));
    QCOMPARE(s->state().config.z_coef, 0.01);
    close_dialogs();
  }
};

QTEST_MAIN(TestStudioRaces)
#include "tst_studio_races.moc"
