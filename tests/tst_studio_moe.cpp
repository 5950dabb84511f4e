// The Redundancy tab as a person uses it (offscreen): a downloaded-style MoE checkpoint (a
// sharded Mixtral-layout folder written by moe_fixtures.h) opens with its similarity map,
// pairs and histogram; File > Open checkpoint on such a file lands in this tab rather than
// failing; a broken file gets a message and leaves the last report; Cancel stops an opening
// quietly.
#include <qcustomplot.h>

#include <QProcess>
#include <QPushButton>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "moe_fixtures.h"
#include "studio_util.h"
#include "views/checkpoint_inspector_view.h"
#include "views/main_window.h"
#include "views/redundancy_view.h"

using namespace unipool::studio;

class TestStudioMoe : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;

  QString fixture(const QString& name, const std::string& family, int shards) {
    fixtures::Spec s;
    s.family = family;
    s.layers = 4;
    s.experts = 6;
    s.shards = shards;
    s.dtype = unipool::DType::BF16;
    s.planted = {{0, 2, 3, 4, 0.9f}};
    const QString path = dir_.filePath(name);
    fixtures::write(path, s);
    return path;
  }

 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void opensAShardedCheckpointWithItsViews() {
    MainWindow w;
    w.resize(1400, 900);
    w.show();
    const QString path = fixture("mixtral", "mixtral", 3);
    QSignalSpy ready(w.redundancy(), &RedundancyView::reportReady);
    w.openMoeCheckpoint(path);
    QCOMPARE(w.tabs()->currentWidget(), w.redundancy());
    QVERIFY(studio_test::wait_until([&] { return !ready.isEmpty(); }));
    RedundancyView* v = w.redundancy();
    QVERIFY(v->statusText().contains(QStringLiteral("Mixtral")));
    QVERIFY(v->statusText().contains(QStringLiteral("3 file(s)")));
    QVERIFY(v->summaryText().contains(QStringLiteral("UniPool view")));
    QVERIFY(!v->progressBar()->isVisible() && !v->cancelButton()->isVisible());
    // The planted pair (layer 0 expert 2 ~ layer 3 expert 4) tops the table.
    QTableWidget* pairs = v->pairsTable();
    QVERIFY(pairs->rowCount() > 0);
    QCOMPARE(pairs->item(0, 0)->text(), QStringLiteral("layer 0"));
    QCOMPARE(pairs->item(0, 1)->text(), QStringLiteral("2"));
    QCOMPARE(pairs->item(0, 2)->text(), QStringLiteral("layer 3"));
    QCOMPARE(pairs->item(0, 3)->text(), QStringLiteral("4"));
    QVERIFY(pairs->item(0, 4)->text().toDouble() > 0.8);
    QCOMPARE(v->nearestTable()->rowCount(), 4);
    // The map is 24 x 24 experts, the same numbers as the report.
    auto* map = qobject_cast<QCPColorMap*>(v->similarityPlot()->plottable(0));
    QVERIFY(map);
    QCOMPARE(map->data()->keySize(), 24);
    QCOMPARE(map->data()->valueSize(), 24);
    const auto& r = v->report()->redundancy;
    QCOMPARE(map->data()->cell(4 + 18, 2), double(r.similarity[size_t(2 * 24 + 22)]));
    QCOMPARE(v->histogramPlot()->graphCount(), 2);
    // Hovering the planted pair's cell names it.
    QCustomPlot* plot = v->similarityPlot();
    plot->replot();
    const QPoint cell(int(plot->xAxis->coordToPixel(22)), int(plot->yAxis->coordToPixel(2)));
    QCOMPARE(v->describeSimilarityAt(cell),
             QStringLiteral("layer 0 expert 2 ~ layer 3 expert 4: cosine %1")
                 .arg(r.similarity[size_t(2 * 24 + 22)], 0, 'f', 3));
  }

  void openCheckpointSendsDownloadedFilesHere() {
    MainWindow w;
    const QString path = fixture("olmoe", "olmoe", 1) + "/model.safetensors";
    QSignalSpy ready(w.redundancy(), &RedundancyView::reportReady);
    QVERIFY(w.openCheckpoint(path));
    QVERIFY(studio_test::wait_until([&] { return !ready.isEmpty(); }));
    QCOMPARE(w.tabs()->currentWidget(), w.redundancy());
    QVERIFY(w.redundancy()->statusText().contains(QStringLiteral("OLMoE")));
    QVERIFY(!w.session()->state().valid);  // no run was opened from it
  }

  void ourCheckpointFromTheCheckpointTab() {
    const QString cli = qEnvironmentVariable("UNIPOOL_CLI");
    QVERIFY(QFile::exists(cli));
    const QString path = dir_.filePath("vanilla.safetensors");
    QProcess p;
    p.start(cli, {"train", "--preset", "vanilla", "--steps", "2", "--batch", "2", "--seq", "16",
                  "--quiet", "--out", path});
    QVERIFY(p.waitForFinished(60000) && p.exitCode() == 0);
    MainWindow w;
    QSignalSpy inspected(w.inspector(), &CheckpointInspectorView::reportReady);
    QSignalSpy ready(w.redundancy(), &RedundancyView::reportReady);
    QVERIFY(!w.inspector()->redundancyButton()->isEnabled());
    QVERIFY(w.openCheckpoint(path));
    QVERIFY(studio_test::wait_until([&] { return !inspected.isEmpty(); }));
    QVERIFY(w.inspector()->redundancyButton()->isEnabled());
    w.inspector()->redundancyButton()->click();
    QVERIFY(studio_test::wait_until([&] { return !ready.isEmpty(); }));
    QCOMPARE(w.tabs()->currentWidget(), w.redundancy());
    QCOMPARE(w.redundancy()->report()->architecture.family, std::string("UniPool Studio: vanilla MoE"));
    QCOMPARE(w.redundancy()->nearestTable()->rowCount(), 6);  // vanilla: a bank per layer

    // Compared with a downloaded-style checkpoint: a third histogram line, both in the summary.
    QSignalSpy reference(w.redundancy(), &RedundancyView::referenceReady);
    w.redundancy()->openReference(fixture("reference", "olmoe", 1));
    QVERIFY(studio_test::wait_until([&] { return !reference.isEmpty(); }));
    QCOMPARE(w.redundancy()->histogramPlot()->graphCount(), 3);
    QVERIFY(w.redundancy()->histogramPlot()->graph(2)->name().contains(QStringLiteral("OLMoE")));
    QVERIFY(w.redundancy()->summaryText().contains(QStringLiteral("Compared with")));
    QCOMPARE(w.redundancy()->reference()->architecture.family, std::string("OLMoE"));
  }

  void aBrokenFileSaysWhyAndKeepsTheLastReport() {
    MainWindow w;
    QSignalSpy ready(w.redundancy(), &RedundancyView::reportReady);
    QSignalSpy failed(w.redundancy(), &RedundancyView::failed);
    w.openMoeCheckpoint(fixture("good", "qwen2_moe", 1));
    QVERIFY(studio_test::wait_until([&] { return !ready.isEmpty(); }));
    const QString dense = fixture("dense", "dense", 1);
    w.openMoeCheckpoint(dense);
    QVERIFY(studio_test::wait_until([&] { return !failed.isEmpty(); }));
    QVERIFY(w.lastError().contains(QStringLiteral("no Mixture-of-Experts layout recognised")));
    QVERIFY(w.redundancy()->statusText().contains(QStringLiteral("Could not open")));
    QVERIFY(w.redundancy()->summaryText().contains(QStringLiteral("Qwen2-MoE")));
    QVERIFY(w.findChild<QWidget*>(QStringLiteral("errorDialog")));
  }

  void cancelStopsQuietly() {
    MainWindow w;
    const QString path = fixture("cancel", "mixtral", 4);
    QSignalSpy failed(w.redundancy(), &RedundancyView::failed);
    QSignalSpy ready(w.redundancy(), &RedundancyView::reportReady);
    // Cancel right after the start; a worker that beat it to the end is tried again.
    bool cancelled = false;
    for (int attempt = 0; attempt < 5 && !cancelled; ++attempt) {
      w.redundancy()->open(path);
      w.redundancy()->cancel();
      QVERIFY(studio_test::wait_until([&] { return !failed.isEmpty() || !ready.isEmpty(); }));
      cancelled = !failed.isEmpty() && failed.last()[1].toString() == QStringLiteral("cancelled");
      failed.clear();
      ready.clear();
    }
    QVERIFY(cancelled);
    QVERIFY(w.redundancy()->statusText().startsWith(QStringLiteral("Cancelled")));
    QVERIFY(!w.findChild<QWidget*>(QStringLiteral("errorDialog")));  // no dialog for a Cancel
    QVERIFY(!w.redundancy()->busy());
  }
};

QTEST_MAIN(TestStudioMoe)
#include "tst_studio_moe.moc"
