// The studio as a person uses it, offscreen: every view draws real engine data, controls reach
// the engine, and the worker starts, pauses and stops cleanly without leaking threads.
#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTableWidget>
#include <QtTest>
#include <cmath>
#include <memory>

#include "studio_window_util.h"
#include "views/compare_view.h"
#include "views/controls_panel.h"
#include "views/domain_view.h"
#include "views/live_controls.h"
#include "views/loss_curves_view.h"
#include "views/main_window.h"
#include "views/new_run_form.h"
#include "views/pool_balance_view.h"
#include "views/routing_heatmap_view.h"
#include "views/token_inspector_view.h"

using namespace unipool;
using namespace unipool::studio;
using studio_test::train;
using studio_test::wait_until;

using studio_test::close_dialogs;
using studio_test::colour_count;
using studio_test::error_dialog;
using studio_test::tiny_window;

class TestStudio : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }
  void cleanup() { close_dialogs(); }

  void viewsDrawTheEnginesRouting() {
    auto w = tiny_window();
    QVERIFY(train(*w->session(), 30));
    const RunHistory& h = w->session()->history();
    QCOMPARE(h.points().size(), size_t(30));

    // Heatmap: each cell is the layer's share computed from the counts the engine sent, less
    // the zero-gate tokens (all gates 0, SPEC 9) that top-1 names expert 0 for: those show as
    // "no expert" on the row label instead.
    RoutingHeatmapView* heat = w->heatmap();
    const RoutingCounts shown = heat->shownCounts();
    QCOMPARE(shown.tokens, h.latestRouting().tokens);
    QVERIFY(shown.tokens > 0);
    QCOMPARE(shown.zero_gate.size(), size_t(shown.n_layers));
    for (int l = 0; l < shown.n_layers; ++l) {
      double row = 0;
      for (int e = 0; e < shown.n_experts(); ++e) {
        const int64_t routed = shown.count(l, e) - (e == 0 ? shown.zero_gate[size_t(l)] : 0);
        const double expected = double(routed) / (double(shown.tokens) * shown.top_k);
        QCOMPARE(heat->cellValue(l, e), expected);
        row += heat->cellValue(l, e);
      }
      const double none = double(shown.zero_gate[size_t(l)]) / double(shown.tokens);
      QVERIFY(std::abs(row + none - 1.0) < 1e-12);
    }
    QVERIFY(heat->describeCell(0, 0).contains(QStringLiteral("layer 0, expert 0")));
    QVERIFY(heat->describeCell(0, 0).contains(QStringLiteral("most routed here")));
    heat->setMode(RoutingHeatmapView::GateMass);
    QCOMPARE(heat->cellValue(1, 2), shown.gate_sum[size_t(1 * 8 + 2)] / double(shown.tokens));
    heat->setMode(RoutingHeatmapView::Share);
    QVERIFY(colour_count(heat->plot()) > 5);

    // Scrubbing back shows an older snapshot; Live follows the newest again. (A loaded machine
    // can deliver 30 steps in one update, which makes one snapshot: train on until there are 2.)
    for (int more = 0; more < 10 && h.snapshots().size() < 2; ++more)
      QVERIFY(train(*w->session(), 10));
    QVERIFY(h.snapshots().size() >= 2);
    heat->showSnapshot(0);
    QCOMPARE(heat->shownCounts().tokens, h.snapshots()[0].counts.tokens);
    heat->showSnapshot(-1);
    QCOMPARE(heat->shownCounts().tokens, h.latestRouting().tokens);

    // Clicking a cell highlights its expert in every layer.
    QSignalSpy selected(heat, &RoutingHeatmapView::expertSelected);
    QCustomPlot* plot = heat->plot();
    plot->replot();
    const QPoint cell(plot->xAxis->coordToPixel(3), plot->yAxis->coordToPixel(1));
    QTest::mouseClick(plot, Qt::LeftButton, {}, cell);
    QCOMPARE(selected.count(), 1);
    QCOMPARE(heat->selectedExpert(), 3);

    // Pool balance: the summary of the same window's routed tokens (zero-gate ones are drawn as
    // their own "no expert" bar, not as load on the first expert).
    const RoutingSummary expected = summarize(without_zero_gate(h.latestRouting()));
    QCOMPARE(w->balance()->summary().imbalance, expected.imbalance);
    QCOMPARE(w->balance()->summary().dead_experts, expected.dead_experts);
    QVERIFY(w->balance()->figuresText().contains(QStringLiteral("imbalance")));
    w->balance()->setStacked(true);
    QVERIFY(colour_count(w->balance()->plot()) > 4);

    // Loss curves: with smoothing off the curve is the engine's CE, step for step.
    w->loss()->setSmoothing(0.0);
    const QVector<double> ce = w->loss()->drawnTrainCe(0);
    QCOMPARE(ce.size(), 30);
    for (int i = 0; i < 30; ++i) QCOMPARE(ce[i], h.points()[size_t(i)].ce);
    w->loss()->setSmoothing(0.9);
    QVERIFY(w->loss()->drawnTrainCe(0)[29] != ce[29]);
    w->loss()->setLogScale(true);
    QCOMPARE(w->loss()->plot()->yAxis->scaleType(), QCPAxis::stLogarithmic);

    // Domains: pooled shares of each domain's choices sum to 1 over the experts.
    DomainView* dom = w->domains();
    for (int d = 0; d < 5; ++d) {
      double sum = 0;
      for (int e = 0; e < 8; ++e) sum += dom->value(d, e);
      QVERIFY2(std::abs(sum - 1.0) < 1e-9, qPrintable(QString::number(sum)));
    }
    w->tabs()->setCurrentWidget(dom);
    QVERIFY(colour_count(dom->plot()) > 5);
  }

  void controlsReachTheEngine() {
    auto w = tiny_window();
    RunSession* s = w->session();
    QVERIFY(train(*s, 5));
    const QString text = QStringLiteral("The quick brown fox jumps over the lazy dog; 12+30=42.");
    QSignalSpy routes(s, &RunSession::routesReady);
    s->post(cmd::RequestRoutes{text});
    QVERIFY(routes.wait(10000));
    const TokenRoutes learned = routes.takeFirst().at(0).value<TokenRoutes>();

    // The per-layer switch: layer 1 goes random in the engine, and its routes change.
    QCheckBox* sw = w->controls()->live()->randomSwitch(1);
    QVERIFY(sw);
    sw->click();
    QVERIFY(wait_until([&] { return s->state().random_layers.at(1); }));
    QVERIFY(!s->state().random_layers.at(0));
    s->post(cmd::RequestRoutes{text});
    QVERIFY(routes.wait(10000));
    const TokenRoutes random = routes.takeFirst().at(0).value<TokenRoutes>();
    int differ0 = 0, differ1 = 0;
    for (int64_t t = 0; t < learned.n_tokens; ++t) {
      differ0 += learned.experts[size_t(t * 2 + 0)] != random.experts[size_t(t * 2 + 0)];
      differ1 += learned.experts[size_t(t * 2 + 1)] != random.experts[size_t(t * 2 + 1)];
    }
    QCOMPARE(differ0, 0);  // layer 0 keeps its learned router
    QVERIFY2(differ1 > learned.n_tokens / 3, qPrintable(QString::number(differ1)));
    QCOMPARE(w->loss()->markerCount(), 1);

    // The heatmap's row label is a switch too: clicking "L1" turns layer 1 back to learned.
    QCustomPlot* heat = w->heatmap()->plot();
    heat->replot();
    QTest::mouseClick(heat, Qt::LeftButton, {},
                      QPoint(heat->axisRect()->left() - 12, heat->yAxis->coordToPixel(1)));
    QVERIFY(wait_until([&] { return !s->state().random_layers.at(1); }));

    // "Random from layer k down" and "all learned" in one move each.
    w->controls()->live()->randomFromLayer(0);
    QVERIFY(wait_until([&] { return s->state().random_layers == std::vector<bool>{true, true}; }));
    w->controls()->live()->randomFromLayer(2);
    QVERIFY(wait_until([&] {
      return s->state().random_layers == std::vector<bool>{false, false};
    }));

    // Pool size: shrink to 6 while training; the heatmap follows with 6 columns.
    s->post(unipool::PoolSize{6, {}});
    QVERIFY(wait_until([&] { return s->state().config.experts_per_group == 6; }));
    QVERIFY(train(*s, 3));
    QCOMPARE(w->heatmap()->shownCounts().experts_per_group, 6);
    QVERIFY(std::isnan(w->heatmap()->cellValue(0, 7)));
    // Expert ids on the axes are whole numbers at this size and at 12 (once 2.5, 7.5, 12.5).
    auto whole_ticks = [](QCPAxis* axis) {
      QVector<double> ticks;
      QVector<QString> labels;
      axis->ticker()->generate(axis->range(), QLocale(), QLatin1Char('g'), 6, ticks, nullptr,
                               &labels);
      for (double t : ticks)
        if (t != std::round(t)) return false;
      return ticks.size() >= 2;
    };
    for (QCPAxis* axis : {w->heatmap()->plot()->xAxis, w->balance()->plot()->xAxis}) {
      QVERIFY(whole_ticks(axis));
      for (double n : {12.0, 20.0, 48.0, 96.0}) {
        axis->setRange(-0.5, n - 0.5);
        QVERIFY2(whole_ticks(axis), qPrintable(QString::number(n)));
      }
    }
    // Learning rate and top-k reach the engine and are marked on the curves.
    s->post(unipool::LearningRate{1e-3});
    s->post(unipool::TopK{2});
    QVERIFY(wait_until([&] { return s->state().config.top_k == 2; }));
    QCOMPARE(s->state().options.lr, 1e-3);
    QVERIFY(train(*s, 2));
    QCOMPARE(w->heatmap()->shownCounts().top_k, 2);
    QCOMPARE(w->loss()->markerCount(), 7);
  }

  void startPauseAndCloseMidTraining() {
    auto w = tiny_window();
    RunSession* s = w->session();
    QVERIFY(!w->controls()->live()->pauseButton()->isEnabled());
    w->controls()->live()->startButton()->click();
    QVERIFY(wait_until([&] { return s->history().lastStep() >= 20; }));
    QVERIFY(w->controls()->live()->pauseButton()->isEnabled());
    w->controls()->live()->pauseButton()->click();
    QVERIFY(wait_until([&] { return !s->isRunning(); }));
    const int64_t paused_at = s->state().step;
    QTest::qWait(300);
    QCOMPARE(s->state().step, paused_at);  // nothing trains after a pause
    w->controls()->live()->stepButton()->click();
    QVERIFY(wait_until([&] { return s->state().step == paused_at + 1; }));

    // Closing while training joins the worker after its current step.
    s->post(cmd::Start{});
    QVERIFY(wait_until([&] { return s->state().step > paused_at + 5; }));
    QElapsedTimer t;
    t.start();
    w->close();
    w.reset();
    QVERIFY2(t.elapsed() < 5000, qPrintable(QString::number(t.elapsed())));
  }

  // Ten sessions created, trained and destroyed: no thread outlives its session and memory
  // settles (what is left after the first is LibTorch's and the allocator's one-time cost).
  void sessionsDoNotLeak() {
    auto proc_status = [](const char* key) {
      QFile f(QStringLiteral("/proc/self/status"));
      if (!f.open(QIODevice::ReadOnly)) return -1.0;
      for (const QByteArray& line : f.readAll().split('\n'))
        if (line.startsWith(key))
          return line.mid(int(strlen(key))).trimmed().split(' ')[0].toDouble();
      return -1.0;
    };
    auto cycle = [] {
      RunSession s(QStringLiteral("leak"), 1);
      studio_test::create_tiny(s);
      QVERIFY(train(s, 3));
      s.post(cmd::Start{});  // destroyed while training
      QTest::qWait(20);
    };
    // Worker threads carry their session's name ("training-leak") as the OS thread name, and
    // so do threads they spawn (a BLAS or OpenMP pool, created once per process): the count
    // must not grow with the number of sessions.
    auto named_threads = [](const QByteArray& name) {
      int n = 0;
      for (const QString& task : QDir(QStringLiteral("/proc/self/task")).entryList(QDir::Dirs)) {
        QFile comm(QStringLiteral("/proc/self/task/%1/comm").arg(task));
        if (comm.open(QIODevice::ReadOnly) && comm.readAll().trimmed() == name) ++n;
      }
      return n;
    };
    cycle();
    const int after_one = named_threads("training-leak");
    const double rss = proc_status("VmRSS:");
    {
      RunSession alive(QStringLiteral("probe"), 1);
      QVERIFY(wait_until([&] { return named_threads("training-probe") >= 1; }, 5000));
    }
    for (int i = 0; i < 10; ++i) cycle();
    // (A pool thread still exiting after the first cycle may be counted there, so <=. A joined
    // thread can stay listed in /proc for a moment after QThread::wait returns, so the count
    // is read once it has settled, within a second.)
    int after_eleven = 0;
    wait_until([&] { return (after_eleven = named_threads("training-leak")) <= after_one; }, 1000);
    QVERIFY2(after_eleven <= after_one,
             qPrintable(QStringLiteral("%1 threads after 11 sessions, %2 after one")
                            .arg(after_eleven)
                            .arg(after_one)));
    const double growth_mib = (proc_status("VmRSS:") - rss) / 1024;
    QVERIFY2(growth_mib < 40, qPrintable(QStringLiteral("grew %1 MiB").arg(growth_mib)));
  }

  void tokenInspectorRoutesAndGenerates() {
    auto w = tiny_window();
    QVERIFY(train(*w->session(), 5));
    TokenInspectorView* tok = w->tokens();
    QSignalSpy routes(w->session(), &RunSession::routesReady);
    tok->loadDomainSample(1);  // arithmetic
    QVERIFY(routes.wait(10000));
    const TokenRoutes& r = tok->routes();
    QVERIFY(r.n_tokens > 20);
    QCOMPARE(tok->grid()->rowCount(), r.n_layers);
    QCOMPARE(tok->grid()->columnCount(), int(r.n_tokens));
    QCOMPARE(tok->grid()->item(1, 7)->text().toInt(), r.experts[size_t((7 * 2 + 1) * 1)]);
    QVERIFY(tok->predictionText(3).contains(QStringLiteral("predicts")));
    QSignalSpy generated(w->session(), &RunSession::generated);
    tok->generate();
    QVERIFY(generated.wait(10000));
    QVERIFY(tok->continuation().size() > 100);
  }

  void compareRunsSideBySide() {
    auto w = tiny_window();
    CompareView* cmp = w->compare();
    // B: a vanilla layout at the tiny size (2 layers x 4 private experts).
    ModelConfig vanilla = preset("tiny").model;
    vanilla.layers_per_group = 1;
    vanilla.experts_per_group = 4;
    refresh_router_constant(vanilla);
    cmp->runB()->post(cmd::CreateRun{vanilla, w->session()->state().options,
                                      studio_test::small_data(), QStringLiteral("vanilla")});
    QVERIFY(wait_until([&] { return cmp->runB()->state().valid; }));
    cmp->startBoth();
    QVERIFY(wait_until([&] {
      return w->session()->history().lastStep() >= 10 && cmp->runB()->history().lastStep() >= 10;
    }));
    cmp->pauseBoth();
    QVERIFY(wait_until([&] { return !w->session()->isRunning() && !cmp->runB()->isRunning(); }));
    QCOMPARE(cmp->lossView()->plot()->graphCount(), 9);  // train, valid, aux for A, B and C
    QVERIFY(cmp->lossView()->drawnTrainCe(1).size() >= 10);
    // B's heatmap shows the vanilla blocks: layer 1 cannot reach layer 0's experts.
    QVERIFY(std::isnan(cmp->heatmapB()->cellValue(1, 0)));
    QVERIFY(!std::isnan(cmp->heatmapB()->cellValue(1, 5)));
    QVERIFY(!std::isnan(cmp->heatmapA()->cellValue(1, 0)));
  }

  // Smoothing decays per step, so points that stand for two steps (after the history merges
  // old points in pairs) are weighted as two steps.
  // The new-run form offers the device; CUDA is greyed with the reason where this build or
  // machine cannot run it, and the status line names where the run computes.
  void deviceChoiceAndStatus() {
    auto w = tiny_window();
    auto* device = w->controls()->form()->findChild<QComboBox*>(QStringLiteral("device"));
    QVERIFY(device);
    QCOMPARE(device->count(), 2);
    QCOMPARE(device->itemData(0).toString(), QStringLiteral("cpu"));
    QString why;
    const bool cuda = RunSession::cudaAvailable(&why);
    auto* model = qobject_cast<QStandardItemModel*>(device->model());
    QCOMPARE(model->item(1)->isEnabled(), cuda);
    if (!cuda) {
      QVERIFY(!why.isEmpty());
      QVERIFY(device->itemData(1, Qt::ToolTipRole).toString().contains(why));
    }
    QVERIFY(wait_until([&] { return w->session()->state().valid; }));
    auto* label = w->controls()->live()->findChild<QLabel*>(QStringLiteral("deviceLabel"));
    QVERIFY(label);
    QCOMPARE(label->text(), QStringLiteral("Device: CPU, fused operators"));
  }

  void smoothingIsPerStep() {
    RunSession s(QStringLiteral("smooth"), 0);
    LossCurvesView view;
    view.addSession(&s, Qt::blue);
    view.setSmoothing(0.5);
    TrainingUpdate u;
    for (int64_t step : {2, 4, 5}) {
      StepPoint p;
      p.step = step;
      p.ce = double(step);
      u.steps.push_back(p);
    }
    u.step = 5;
    s.history().addUpdate(u);
    const QVector<double> drawn = view.drawnTrainCe(0);
    QCOMPARE(drawn.size(), 3);
    const double after4 = 0.25 * 2 + 0.75 * 4;  // gap 2: keep 0.5^2
    QCOMPARE(drawn[1], after4);
    QCOMPARE(drawn[2], 0.5 * after4 + 0.5 * 5);  // gap 1
  }
};

QTEST_MAIN(TestStudio)
#include "tst_studio.moc"
