// The Downloaded model tab as a person uses it (offscreen): File > Open on a downloaded
// model's folder (tiny random checkpoints in the Mixtral and Qwen2-MoE layouts, written by
// scripts/reference/make_tiny_hf.py, with a small tokenizer.json) opens it in its tab while
// the training run stays; the text is routed at once: the heatmap's cells are the token
// shares of the same routes `unipool routes` prints, the token grid has a column per token,
// co-activation's diagonal is the heatmap; a folder of .txt files gives one domain each; the
// probe runs in the Experiments tab; a broken model gets a message, keeps the last one and
// is offered in the Redundancy tab.
#include <qcustomplot.h>

#include <QComboBox>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMessageBox>
#include <QProcess>
#include <QPushButton>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "session/experiment_jobs.h"
#include "studio_util.h"
#include "views/downloaded_model_view.h"
#include "views/experiments_view.h"
#include "views/main_window.h"
#include "views/redundancy_view.h"

using namespace unipool::studio;

namespace {

// Letters, space and punctuation with a few merges: ids below the tiny models' vocabularies.
const char* const kTokenizer =
    "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"d\": 3, "
    "\"e\": 4, \"f\": 5, \"g\": 6, \"h\": 7, \"i\": 8, \"j\": 9, \"k\": 10, \"l\": 11, "
    "\"m\": 12, \"n\": 13, \"o\": 14, \"p\": 15, \"q\": 16, \"r\": 17, \"s\": 18, \"t\": 19, "
    "\"u\": 20, \"v\": 21, \"w\": 22, \"x\": 23, \"y\": 24, \"z\": 25, \" \": 26, \".\": 27, "
    "\"th\": 28, \"the\": 29, \"er\": 30, \"in\": 31}, \"merges\": [\"t h\", \"th e\", \"e r\", "
    "\"i n\"]}}";

const QString kText = QStringLiteral(
    "the winter in the north is longer than the summer. the river runs under the ice. ");

QCPColorMap* colorMap(QCustomPlot* plot) {
  return plot->plottableCount() ? qobject_cast<QCPColorMap*>(plot->plottable(0)) : nullptr;
}

}  // namespace

class TestStudioDownloaded : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;

  QString model(const QString& variant) {
    const QString folder = dir_.filePath(variant);
    if (QFileInfo::exists(folder)) return folder;
    QProcess p;
    p.start(QStringLiteral("/usr/bin/python3"),
            {qEnvironmentVariable("UNIPOOL_SOURCE_DIR") + "/scripts/reference/make_tiny_hf.py",
             dir_.path(), "--variants", variant});
    if (!p.waitForFinished(60000) || p.exitCode() != 0) qFatal("make_tiny_hf.py failed");
    QFile tok(folder + "/tokenizer.json");
    tok.open(QIODevice::WriteOnly);
    tok.write(kTokenizer);
    return folder;
  }

 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void routesTextBesideTheTrainingRun() {
    MainWindow w;
    w.resize(1400, 900);
    w.show();
    studio_test::create_tiny(*w.session());
    QVERIFY(studio_test::train(*w.session(), 3));
    const int64_t step = w.session()->state().step;
    const QString folder = model("mixtral");
    DownloadedModelView* v = w.downloaded();
    v->textEdit()->setPlainText(kText);
    QSignalSpy routed(v, &DownloadedModelView::textRouted);
    QVERIFY(w.openCheckpoint(folder));
    QCOMPARE(w.tabs()->currentWidget(), v);
    QVERIFY(studio_test::wait_until([&] { return !routed.isEmpty(); }));
    QVERIFY(w.session()->state().valid);  // the training run is still there, untouched
    QCOMPARE(w.session()->state().step, step);
    const TextRouting& r = *v->routing();
    QCOMPARE(r.info.family, std::string("Mixtral"));
    const int M = int(r.info.moe_layers.size()), E = r.info.n_experts, k = r.info.top_k;
    QCOMPARE(M, 3);

    // The same routes as the CLI prints for the same text.
    QFile text(dir_.filePath("text.txt"));
    QVERIFY(text.open(QIODevice::WriteOnly));
    text.write(kText.toUtf8());
    text.close();
    QProcess cli;
    cli.start(qEnvironmentVariable("UNIPOOL_CLI"),
              {"routes", "--checkpoint", folder, "--text", text.fileName(), "--json", "--threads", "1"});
    QVERIFY(cli.waitForFinished(60000) && cli.exitCode() == 0);
    const QJsonArray tokens = QJsonDocument::fromJson(cli.readAllStandardOutput())
                                  .object()[QStringLiteral("tokens")].toArray();
    QCOMPARE(tokens.size(), int(r.ids.size()));
    std::vector<int64_t> counts(size_t(M * E), 0);
    for (int t = 0; t < tokens.size(); ++t) {
      QCOMPARE(tokens[t].toObject()[QStringLiteral("id")].toInt(), r.ids[size_t(t)]);
      const QJsonArray layers = tokens[t].toObject()[QStringLiteral("layers")].toArray();
      for (int m = 0; m < M; ++m) {
        const QJsonArray experts = layers[m].toObject()[QStringLiteral("experts")].toArray();
        for (int j = 0; j < k; ++j) {
          QCOMPARE(experts[j].toInt(), r.routes.experts[size_t((t * M + m) * k + j)]);
          ++counts[size_t(m * E + experts[j].toInt())];
        }
      }
    }
    // Heatmap: experts x MoE layers, each cell the share of tokens whose top-k holds it.
    QCPColorMap* heat = colorMap(v->heatmapPlot());
    QVERIFY(heat);
    QCOMPARE(heat->data()->keySize(), E);
    QCOMPARE(heat->data()->valueSize(), M);
    for (int m = 0; m < M; ++m) {
      double row = 0;
      for (int e = 0; e < E; ++e) {
        QCOMPARE(heat->data()->cell(e, m), double(counts[size_t(m * E + e)]) / double(r.ids.size()));
        row += heat->data()->cell(e, m);
      }
      QVERIFY(qAbs(row - k) < 1e-9);  // each token names k experts
    }
    // Tokens: a column per token, a row per MoE layer, the experts in the cell.
    QTableWidget* grid = v->tokenTable();
    QCOMPARE(grid->columnCount(), int(r.ids.size()));
    QCOMPARE(grid->rowCount(), M);
    QCOMPARE(grid->horizontalHeaderItem(0)->text(), QStringLiteral("the"));
    QCOMPARE(grid->item(1, 0)->text().split(',').size(), k);
    // Co-activation: symmetric, its diagonal is the heatmap's row of that layer.
    QCPColorMap* pairs = colorMap(v->coactivationPlot());
    QVERIFY(pairs);
    for (int i = 0; i < E; ++i) {
      QCOMPARE(pairs->data()->cell(i, i), heat->data()->cell(i, 0));
      for (int j = 0; j < E; ++j) QCOMPARE(pairs->data()->cell(i, j), pairs->data()->cell(j, i));
    }
  }

  void cancelStopsQuietly() {
    MainWindow w;
    DownloadedModelView* v = w.downloaded();
    QSignalSpy routed(v, &DownloadedModelView::textRouted);
    w.openDownloadedModel(model("mixtral"));
    QVERIFY(studio_test::wait_until([&] { return !routed.isEmpty(); }));
    QSignalSpy failed(v, &DownloadedModelView::failed);
    routed.clear();
    // A long text (4,096 tokens), cancelled at once; a pass that beat Cancel is tried again.
    bool cancelled = false;
    for (int attempt = 0; attempt < 5 && !cancelled; ++attempt) {
      v->routeText(kText.repeated(60));
      v->cancel();
      QVERIFY(studio_test::wait_until([&] { return !failed.isEmpty() || !routed.isEmpty(); }));
      cancelled = !failed.isEmpty() && failed.last()[1].toString() == kDownloadedCancelled;
      failed.clear();
      routed.clear();
    }
    QVERIFY(cancelled);
    QVERIFY(v->statusText().contains(QStringLiteral("cancelled")));
    QVERIFY(!w.findChild<QWidget*>(QStringLiteral("errorDialog")));  // no dialog for a Cancel
    QVERIFY(!v->model()->busy());
    QVERIFY(v->routing());  // the last picture stays
  }

  void domainsProbeAndABrokenModel() {
    MainWindow w;
    DownloadedModelView* v = w.downloaded();
    QSignalSpy opened(v, &DownloadedModelView::opened);
    QSignalSpy routed(v, &DownloadedModelView::textRouted);
    w.openDownloadedModel(model("qwen2_moe"));
    QVERIFY(studio_test::wait_until([&] { return !routed.isEmpty(); }));
    QCOMPARE(v->routing()->info.moe_layers, std::vector<int>{1});  // layers 0, 2, 3 are dense

    // Domains: one .txt per domain, bars of token shares that add up to k per domain.
    QDir(dir_.path()).mkdir(QStringLiteral("domains"));
    for (const auto& [name, body] : {std::pair<QString, QString>{"alpha", "abc abc abc abc. "},
                                     {"zeta", "the north river. the winter. "}}) {
      QFile f(dir_.filePath("domains/" + name + ".txt"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(body.repeated(8).toUtf8());
    }
    QSignalSpy domains(v, &DownloadedModelView::domainsRouted);
    v->routeDomains(dir_.filePath("domains"));
    QVERIFY(studio_test::wait_until([&] { return !domains.isEmpty(); }));
    QCOMPARE(v->domainBox()->count(), 2);
    QCOMPARE(v->domainBox()->itemText(1), QStringLiteral("zeta"));
    auto* bars = qobject_cast<QCPBars*>(v->domainPlot()->plottable(0));
    QVERIFY(bars);
    double sum = 0;
    for (auto it = bars->data()->begin(); it != bars->data()->end(); ++it) sum += it->value;
    QVERIFY(qAbs(sum - v->routing()->info.top_k) < 1e-9);

    // The probe, in the Experiments tab: none, each MoE layer, from each MoE layer.
    Q_EMIT v->probeRequested(v->model()->model(), v->routing()->ids, QStringLiteral("Qwen2-MoE"), 16);
    QCOMPARE(w.tabs()->currentWidget(), w.experiments());
    // (The spy hears the worker's signal at once; the view's slot runs queued, after it.)
    QVERIFY(studio_test::wait_until([&] { return !w.experiments()->probeResults().empty(); }));
    const auto& results = w.experiments()->probeResults();
    QCOMPARE(results.size(), size_t(1));
    QCOMPARE(results[0].rows.size(), size_t(3));
    QCOMPARE(results[0].rows[1].name, std::string("layer 1"));
    QCOMPARE(w.experiments()->probeTable()->rowCount(), 3);

    // A model with a missing tensor: a message, and the shown model stays.
    const QString broken = dir_.filePath("broken");
    QVERIFY(QDir().mkpath(broken));
    QFile::copy(model("mixtral") + "/config.json", broken + "/config.json");
    QFile::copy(model("mixtral") + "/tokenizer.json", broken + "/tokenizer.json");
    QFile cut(model("mixtral") + "/model.safetensors");
    QVERIFY(cut.open(QIODevice::ReadOnly));
    QFile out(broken + "/model.safetensors");
    QVERIFY(out.open(QIODevice::WriteOnly));
    out.write(cut.read(cut.size() - 64));  // truncated: the header promises more bytes
    out.close();
    QSignalSpy failed(v, &DownloadedModelView::openFailed);
    QVERIFY(w.openCheckpoint(broken));
    QVERIFY(studio_test::wait_until([&] { return !failed.isEmpty(); }));
    // The dialog says why and where to look (the Redundancy tab may add its own after it).
    bool said = false;
    for (QMessageBox* box : w.findChildren<QMessageBox*>(QStringLiteral("errorDialog")))
      said = said || (box->windowTitle() == QStringLiteral("Cannot run this model") &&
                      box->text().contains(QStringLiteral("Redundancy")));
    QVERIFY(said);
    QCOMPARE(w.tabs()->currentWidget(), w.redundancy());  // what can be seen of it
    QVERIFY(v->statusText().contains(QStringLiteral("failed")));
    QCOMPARE(v->model()->info().family, std::string("Qwen2-MoE"));  // the last one is kept
  }
};

QTEST_MAIN(TestStudioDownloaded)
#include "tst_studio_downloaded.moc"
