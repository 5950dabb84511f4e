// The studio's run history and metrics export, without a window: the history stays bounded
// over an hour of steps and keeps the right numbers while it compacts; exports round-trip.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include "session/metrics_export.h"
#include "session/run_history.h"

using namespace unipool;
using namespace unipool::studio;

namespace {

RoutingCounts counts(int L, int G, int Mg, int64_t tokens, int seed) {
  RoutingCounts c(L, G, Mg, 1, 2);
  c.tokens = tokens;
  for (int l = 0; l < L; ++l) {
    // Spread `tokens` choices over the layer's experts, unevenly and reproducibly.
    int64_t left = tokens;
    for (int i = 0; i < Mg; ++i) {
      const int64_t n = i + 1 == Mg ? left : (left * ((i + seed + l) % 3 + 1)) / 6;
      c.counts[size_t(l * Mg + i)] = n;
      c.gate_sum[size_t(l * Mg + i)] = 0.5 * double(n);
      c.domain_counts[size_t(l * Mg + i)] = n / 2;
      c.domain_counts[size_t((L + l) * Mg + i)] = n - n / 2;
      left -= n;
    }
    c.entropy_sum[size_t(l)] = 0.5 * double(tokens);
  }
  c.domain_tokens = {tokens / 2, tokens - tokens / 2};
  c.reuse_sum = 0.25 * double(tokens);
  return c;
}

TrainingUpdate update(int64_t step, const RoutingCounts& routing) {
  TrainingUpdate u;
  StepPoint p;
  p.step = step;
  p.ce = p.loss = double(step);
  p.aux = 0.01;
  u.steps.push_back(p);
  u.step = step;
  u.routing = routing;
  return u;
}

}  // namespace

class TestStudioHistory : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void snapshotsSumTheirSteps() {
    RunHistory::Limits limits;
    limits.snapshot_every = 5;
    RunHistory h(limits);
    const RoutingCounts c = counts(4, 4, 6, 100, 1);
    for (int s = 1; s <= 23; ++s) h.addUpdate(update(s, c));
    QCOMPARE(h.snapshots().size(), size_t(4));  // steps 1-5, 6-10, 11-15, 16-20
    QCOMPARE(h.snapshots()[1].step, int64_t(10));
    QCOMPARE(h.snapshots()[1].counts.tokens, int64_t(500));
    QCOMPARE(h.snapshots()[1].counts.count(2, 3), 5 * c.count(2, 3));
    // The open window (steps 21-23) is the newest routing; cumulative holds all 23.
    QCOMPARE(h.latestRouting().tokens, int64_t(300));
    QCOMPARE(h.cumulative().tokens, int64_t(2300));
    QCOMPARE(h.cumulative().domain_counts[7], 23 * c.domain_counts[7]);
  }

  void shapeChangeStartsANewWindow() {
    RunHistory h;
    for (int s = 1; s <= 3; ++s) h.addUpdate(update(s, counts(2, 2, 8, 50, 0)));
    ChangeEvent e;
    e.step = 3;
    e.kind = ChangeEvent::PoolResized;
    h.addChange(e);
    QCOMPARE(h.snapshots().size(), size_t(1));  // the 8-expert window was closed
    h.addUpdate(update(4, counts(2, 2, 12, 50, 0)));
    QCOMPARE(h.latestRouting().experts_per_group, 12);
    QCOMPARE(h.cumulative().experts_per_group, 12);
    QCOMPARE(h.cumulative().tokens, int64_t(50));
    QCOMPARE(h.changes().size(), size_t(1));
  }

  // An hour of the default preset is ~16,000 steps; 100,000 here, with the real shape.
  void anHourOfHistoryIsBounded() {
    RunHistory::Limits limits;  // the studio's defaults
    RunHistory h(limits);
    const RoutingCounts c = counts(6, 6, 24, 2048, 2);
    size_t bytes_at_20k = 0;
    for (int s = 1; s <= 100000; ++s) {
      h.addUpdate(update(s, c));
      if (s % 50 == 0) h.addValidation({s, 1.0, c});
      if (s == 20000) bytes_at_20k = h.approximateBytes();
    }
    QVERIFY(h.points().size() <= limits.max_points);
    QVERIFY(h.points().size() >= limits.max_points / 2);
    QVERIFY(h.snapshots().size() <= limits.max_snapshots);
    QVERIFY(h.snapshots().size() >= limits.max_snapshots / 2);
    QCOMPARE(h.points().back().step, int64_t(100000));
    // Memory after 100,000 steps is within 2x of after 20,000: bounded, not growing.
    QVERIFY2(h.approximateBytes() < 2 * bytes_at_20k,
             qPrintable(QStringLiteral("%1 vs %2").arg(h.approximateBytes()).arg(bytes_at_20k)));
    QVERIFY(h.approximateBytes() < 64u << 20);
    // Compaction averages neighbours: ce is the step number, so a merged point's ce is the
    // mean of the steps it covers, never more than the step it is filed under.
    for (const StepPoint& p : h.points()) QVERIFY(p.ce <= double(p.step) && p.ce > 0);
    const StepPoint& last = h.points()[h.points().size() - 2];
    QVERIFY(double(last.step) - last.ce < 16.0);
    // Snapshots stay in step order after thinning.
    for (size_t i = 1; i < h.snapshots().size(); ++i)
      QVERIFY(h.snapshots()[i].step > h.snapshots()[i - 1].step);
  }

  void csvAndJsonRoundTrip() {
    RunHistory h;
    const RoutingCounts c = counts(2, 2, 4, 40, 3);
    for (int s = 1; s <= 12; ++s) h.addUpdate(update(s, c));
    h.addValidation({10, 1.25, c});
    ChangeEvent e;
    e.step = 6;
    e.kind = ChangeEvent::LearningRate;
    e.text = QStringLiteral("lr 0.001");
    h.addChange(e);

    const QList<QByteArray> lines = metricsCsv(h).trimmed().split('\n');
    QCOMPARE(lines.size(), 1 + 12 + 1);
    QCOMPARE(lines[0], QByteArray("step,loss,ce,aux,lr,tokens_per_s,applied,valid_ce"));
    QCOMPARE(lines[10].split(',')[0], QByteArray("10"));
    QCOMPARE(lines[10].split(',')[7].toDouble(), 1.25);
    QCOMPARE(lines[9].split(',')[7], QByteArray());
    QCOMPARE(lines[3].split(',')[2].toDouble(), 3.0);
    QCOMPARE(lines.last(), QByteArray("# 6 learning_rate lr 0.001"));

    RunState state;
    state.valid = true;
    state.config = preset("tiny").model;
    state.source = QStringLiteral("tiny");
    QJsonParseError error;
    const QJsonDocument doc = QJsonDocument::fromJson(metricsJson(h, state), &error);
    QCOMPARE(error.error, QJsonParseError::NoError);
    const QJsonObject root = doc.object();
    QCOMPARE(root[QStringLiteral("steps")].toArray().size(), 12);
    QCOMPARE(root[QStringLiteral("steps")].toArray()[4].toObject()[QStringLiteral("ce")].toDouble(),
             5.0);
    QCOMPARE(
        root[QStringLiteral("validation")].toArray()[0].toObject()[QStringLiteral("ce")].toDouble(),
        1.25);
    QCOMPARE(root[QStringLiteral("config")].toObject()[QStringLiteral("experts_per_group")].toInt(),
             8);
    QCOMPARE(
        root[QStringLiteral("changes")].toArray()[0].toObject()[QStringLiteral("kind")].toString(),
        QStringLiteral("learning_rate"));
    const QJsonObject routing = root[QStringLiteral("routing")].toObject();
    QVERIFY(routing.contains(QStringLiteral("imbalance")));
  }
};

QTEST_GUILESS_MAIN(TestStudioHistory)
#include "tst_studio_history.moc"
