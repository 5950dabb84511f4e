// Watching a run the studio does not host: a real `unipool train --log --log-routing-every`
// log read by a RunSession gives the run's shape, every loss point and the logged routing;
// a log that grows is followed line by line (a half-written line waits for its newline);
// a truncated log starts over; a file that is not a log is refused with a message.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "session/run_log_follower.h"
#include "session/run_session.h"
#include "studio_util.h"

using namespace unipool;
using namespace unipool::studio;

class TestWatch : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  QString log_;

  QList<QByteArray> logLines() const {
    QFile src(log_);
    return src.open(QIODevice::ReadOnly) ? src.readAll().split('\n') : QList<QByteArray>();
  }

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    const QString cli = qEnvironmentVariable("UNIPOOL_CLI");
    QVERIFY2(QFile::exists(cli), "set UNIPOOL_CLI");
    log_ = dir_.filePath("run.jsonl");
    QProcess p;
    p.start(cli, {"train", "--preset", "tiny", "--steps", "20", "--quiet", "--log", log_,
                  "--log-routing-every", "5", "--out", dir_.filePath("run.safetensors"),
                  "--save-every", "10"});
    QVERIFY(p.waitForFinished(120000));
    QCOMPARE(p.exitCode(), 0);
  }

  void watchesAFinishedLog() {
    RunSession s(QStringLiteral("W"));
    QSignalSpy saved(&s, &RunSession::watchedCheckpoint);
    s.watchRun(log_);
    QVERIFY(studio_test::wait_until([&] { return s.history().lastStep() == 20; }));
    // Saved at steps 10 and 20 (--save-every) and at the end: the window opens each.
    QCOMPARE(saved.count(), 3);
    QCOMPARE(saved.last().at(0).toString(), dir_.filePath("run.safetensors"));
    QVERIFY(s.state().valid);
    QVERIFY(!s.state().can_train);  // read-only
    QVERIFY(s.state().watching);
    QCOMPARE(s.state().config.n_layers, 2);
    QVERIFY(s.state().compute.contains("watching run.jsonl"));
    QCOMPARE(int(s.history().points().size()), 20);
    // The routing the log carries (steps 5, 10, 15, 20): the history's last window (10 steps)
    // holds the records of steps 15 and 20, summed.
    QFile f(log_);
    QVERIFY(f.open(QIODevice::ReadOnly));
    int64_t tokens = 0;
    std::vector<int64_t> counts;
    for (const QByteArray& line : f.readAll().split('\n')) {
      const QJsonObject o = QJsonDocument::fromJson(line).object();
      if (o["step"].toInt() == 3) QCOMPARE(s.history().points()[2].loss, o["loss"].toDouble());
      if (!o.contains("routing") || o["step"].toInt() <= 10) continue;
      const QJsonObject r = o["routing"].toObject();
      tokens += int64_t(r["tokens"].toDouble());
      const QJsonArray c = r["counts"].toArray();
      counts.resize(size_t(c.size()), 0);
      for (int i = 0; i < c.size(); ++i) counts[size_t(i)] += int64_t(c[i].toDouble());
    }
    const RoutingCounts shown = s.history().latestRouting();
    QCOMPARE(shown.tokens, tokens);
    QCOMPARE(shown.counts, counts);
  }

  void followsAGrowingLog() {
    const QList<QByteArray> lines = logLines();
    const QString grow = dir_.filePath("grow.jsonl");
    QFile out(grow);
    QVERIFY(out.open(QIODevice::WriteOnly));
    out.write(lines[0] + '\n' + lines[1] + '\n' + lines[2].left(20));  // a half-written line
    out.flush();
    RunLogFollower follower;
    QSignalSpy updates(&follower, &RunLogFollower::trainingUpdate);
    QSignalSpy states(&follower, &RunLogFollower::stateChanged);
    QString error;
    QVERIFY(follower.follow(grow, &error, 1 << 30));  // polled by hand below
    QCOMPARE(states.count(), 1);
    int steps = 0;
    for (const auto& u : updates) steps += int(u.at(0).value<TrainingUpdate>().steps.size());
    QCOMPARE(steps, 1);  // step 1 only: step 2's line has no newline yet
    out.write(lines[2].mid(20) + '\n' + lines[3] + '\n');
    out.flush();
    follower.poll();
    steps = 0;
    for (const auto& u : updates) steps += int(u.at(0).value<TrainingUpdate>().steps.size());
    QCOMPARE(steps, 3);
    // Truncated (a new run in the same file): it starts over.
    QSignalSpy started(&follower, &RunLogFollower::started);
    out.resize(0);
    out.seek(0);
    out.write(lines[0] + '\n');
    out.flush();
    follower.poll();
    QCOMPARE(started.count(), 1);
  }

  // A writer killed mid-line leaves a torn line; a resumed run appends after it. The torn
  // line is skipped (said once) and every whole line around it is kept.
  void skipsATornLine() {
    const QList<QByteArray> lines = logLines();
    const QString torn = dir_.filePath("torn.jsonl");
    QFile out(torn);
    QVERIFY(out.open(QIODevice::WriteOnly));
    out.write(lines[0] + '\n' + lines[1] + '\n' + lines[2].left(25) + '\n' + lines[3] + '\n' +
              lines[4] + '\n');
    out.close();
    RunLogFollower follower;
    QSignalSpy updates(&follower, &RunLogFollower::trainingUpdate);
    QSignalSpy problems(&follower, &RunLogFollower::problem);
    QString error;
    QVERIFY(follower.follow(torn, &error, 1 << 30));
    std::vector<int64_t> steps;
    for (const auto& u : updates)
      for (const StepPoint& p : u.at(0).value<TrainingUpdate>().steps) steps.push_back(p.step);
    QCOMPARE(steps, (std::vector<int64_t>{1, 3, 4}));
    QCOMPARE(problems.count(), 1);
    QVERIFY(problems.at(0).at(0).toString().contains("skipped"));
  }

  // A line of 100 MB with no newline (a foreign file appended to the log, a broken writer):
  // held only up to 64 MiB, then dropped up to its newline; the records after it are read.
  void dropsAnOverlongLine() {
    const QList<QByteArray> lines = logLines();
    const QString path = dir_.filePath("overlong.jsonl");
    QFile out(path);
    QVERIFY(out.open(QIODevice::WriteOnly));
    out.write(lines[0] + '\n' + lines[1] + '\n');
    out.write(QByteArray(qsizetype(100) << 20, 'x'));
    out.write(QByteArray("\n") + lines[2] + '\n');
    out.close();
    RunLogFollower follower;
    QSignalSpy updates(&follower, &RunLogFollower::trainingUpdate);
    QSignalSpy problems(&follower, &RunLogFollower::problem);
    QSignalSpy progress(&follower, &RunLogFollower::catchingUp);
    QString error;
    QVERIFY(follower.follow(path, &error, 1 << 30));  // polled by hand below
    for (int i = 0; i < 20 && !progress.isEmpty() &&
                    progress.last().at(0).toLongLong() < progress.last().at(1).toLongLong();
         ++i)
      follower.poll();
    std::vector<int64_t> steps;
    for (const auto& u : updates)
      for (const StepPoint& p : u.at(0).value<TrainingUpdate>().steps) steps.push_back(p.step);
    QCOMPARE(steps, (std::vector<int64_t>{1, 2}));
    QCOMPARE(problems.count(), 1);
    QVERIFY2(problems.at(0).at(0).toString().contains("longer than any run log record"),
             qPrintable(problems.at(0).at(0).toString()));
    // The backlog was read a bounded piece at a time, its progress reported.
    QVERIFY(progress.count() >= 6);
    qint64 before = 0;
    for (const auto& p : progress) {
      const qint64 read = p.at(0).toLongLong();
      QVERIFY(read > before && read - before <= (qint64(16) << 20));
      QCOMPARE(p.at(1).toLongLong(), QFileInfo(path).size());
      before = read;
    }
  }

  void refusesAFileThatIsNotALog() {
    const QString path = dir_.filePath("notes.txt");
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("hello\n");
    f.close();
    RunSession s(QStringLiteral("W"));
    studio_test::create_tiny(s);
    QVERIFY(studio_test::wait_until([&] { return s.state().valid; }));
    QSignalSpy failed(&s, &RunSession::failed);
    s.watchRun(path);
    QCOMPARE(failed.count(), 1);
    QVERIFY(failed.at(0).at(1).toString().contains("not a UniPool training log"));
    QVERIFY(s.state().can_train);  // the hosted run is untouched
  }
};

QTEST_GUILESS_MAIN(TestWatch)
#include "tst_watch.moc"
