// Lessons: the format is strict (a malformed file names its line and field), and every shipped
// lesson plays headless, start to end, with each expectation it states measured and true.
// playLesson runs once per lesson (ctest passes the lesson's file name as the data tag).
#include <QTemporaryDir>
#include <QtTest>

#include "session/lessons/lesson.h"
#include "session/lessons/lesson_measures.h"
#include "session/lessons/lesson_player.h"
#include "session/run_session.h"
#include "studio_util.h"

using namespace unipool;
using namespace unipool::studio;

namespace {

const char* kGood = R"(---
title: A test lesson
order: 3
---

## Make it
run: preset=tiny seed=5 batch=4 seq=32 steps=200
do: create
do: train 12
point: heatmap
expect: loss_drop > -10 | It trained.

Some text.
With a question?
)";

// The lesson above with line `line` (1-based) replaced.
QString withLine(int line, const QString& replacement) {
  QStringList lines = QString::fromLatin1(kGood).split(QLatin1Char('\n'));
  lines[line - 1] = replacement;
  return lines.join(QLatin1Char('\n'));
}

}  // namespace

class TestLessons : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void parsesAGoodLesson() {
    LessonError error;
    const auto lesson = parseLesson(QString::fromLatin1(kGood), QStringLiteral("t.md"), &error);
    QVERIFY2(lesson.has_value(), qPrintable(error.text()));
    QCOMPARE(lesson->title, QStringLiteral("A test lesson"));
    QCOMPARE(lesson->order, 3);
    QCOMPARE(int(lesson->steps.size()), 1);
    const LessonStep& s = lesson->steps[0];
    QCOMPARE(s.title, QStringLiteral("Make it"));
    QCOMPARE(s.line, 6);
    QVERIFY(s.run.has_value());
    QCOMPARE(s.run->preset, QStringLiteral("tiny"));
    QCOMPARE(s.run->seed, quint64(5));
    QCOMPARE(s.run->batch, 4);
    QCOMPARE(int(s.actions.size()), 2);
    QCOMPARE(s.actions[1].kind, LessonAction::Train);
    QCOMPARE(s.actions[1].value, 12.0);
    QCOMPARE(s.point, QStringLiteral("heatmap"));
    QCOMPARE(int(s.expectations.size()), 1);
    QCOMPARE(s.expectations[0].op, QStringLiteral(">"));
    QCOMPARE(s.expectations[0].value, -10.0);
    QCOMPARE(s.expectations[0].statement, QStringLiteral("It trained."));
    QCOMPARE(s.text, QStringLiteral("Some text.\nWith a question?"));
    QVERIFY(s.expectations[0].holds(-9.5));
    QVERIFY(!s.expectations[0].holds(-10));
    QVERIFY(!s.expectations[0].holds(std::nan("")));
  }

  void rejectsMalformedLessons_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<int>("line");
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("says");
    QTest::newRow("no header") << QStringLiteral("## step\n") << 1 << "header"
                               << "'---'";
    QTest::newRow("header not closed") << QStringLiteral("---\ntitle: x\n") << 1 << "header"
                                       << "not closed";
    QTest::newRow("unknown header key") << withLine(3, "level: 2") << 3 << "level"
                                        << "unknown header";
    QTest::newRow("no title") << withLine(2, "summary: x") << 1 << "title"
                              << "no title";
    QTest::newRow("unknown preset") << withLine(7, "run: preset=huge") << 7 << "preset"
                                    << "unknown preset 'huge'";
    QTest::newRow("bad seed") << withLine(7, "run: preset=tiny seed=-3") << 7 << "seed"
                              << "whole number";
    QTest::newRow("run field") << withLine(7, "run: preset=tiny colour=red") << 7 << "colour"
                               << "unknown run field";
    QTest::newRow("unknown action") << withLine(9, "do: dance") << 9 << "do"
                                    << "unknown action 'dance'";
    QTest::newRow("train words") << withLine(9, "do: train many") << 9 << "do"
                                 << "'many'";
    QTest::newRow("random") << withLine(9, "do: random maybe") << 9 << "do"
                            << "random from";
    QTest::newRow("tab") << withLine(9, "do: tab kitchen") << 9 << "do"
                         << "unknown tab 'kitchen'";
    QTest::newRow("widget") << withLine(10, "point: toaster") << 10 << "point"
                            << "unknown widget";
    QTest::newRow("measure") << withLine(11, "expect: imbalanse > 2 | x") << 11 << "expect"
                             << "unknown measure 'imbalanse'";
    QTest::newRow("expect form") << withLine(11, "expect: loss is low") << 11 << "expect"
                                 << "MEASURE OP NUMBER";
    QTest::newRow("step field") << withLine(10, "pointer: heatmap") << 10 << "pointer"
                                << "unknown step field";
    QTest::newRow("no create") << withLine(8, "do: tab routing") << 9 << "do"
                               << "before any 'create'";
    QTest::newRow("text first") << withLine(5, "Hello") << 5 << "step"
                                << "before the first";
    QTest::newRow("no steps") << QStringLiteral("---\ntitle: x\n---\n") << 4 << "step"
                              << "no '## ' steps";
  }
  void rejectsMalformedLessons() {
    QFETCH(QString, text);
    QFETCH(int, line);
    QFETCH(QString, field);
    QFETCH(QString, says);
    LessonError error;
    QVERIFY(!parseLesson(text, QStringLiteral("/x/bad.md"), &error).has_value());
    QCOMPARE(error.line, line);
    QCOMPARE(error.field, field);
    QVERIFY2(error.message.contains(says), qPrintable(error.message));
    QVERIFY2(
        error.text().startsWith(QStringLiteral("bad.md, line %1, field '%2'").arg(line).arg(field)),
        qPrintable(error.text()));
  }

  void rejectsFilesThatAreNotLessons() {
    QTemporaryDir dir;
    LessonError error;
    QVERIFY(!loadLesson(dir.filePath("missing.md"), &error).has_value());
    QVERIFY(error.text().contains("cannot read"));
    QFile bin(dir.filePath("bin.md"));
    QVERIFY(bin.open(QIODevice::WriteOnly));
    bin.write(QByteArray("---\ntitle: \xff\xfe\0\0", 16));
    bin.close();
    QVERIFY(!loadLesson(bin.fileName(), &error).has_value());
    QVERIFY2(error.text().contains("not UTF-8"), qPrintable(error.text()));
    // 100 MB (sparse): refused after reading 1 MiB, not read whole.
    QFile huge(dir.filePath("huge.md"));
    QVERIFY(huge.open(QIODevice::WriteOnly));
    QVERIFY(huge.resize(qint64(100) << 20));
    huge.close();
    QVERIFY(!loadLesson(huge.fileName(), &error).has_value());
    QVERIFY2(error.text().contains("larger than 1 MiB"), qPrintable(error.text()));
  }

  void shipsSevenLessonsThatAllParse() {
    QStringList problems;
    const auto lessons = shippedLessons(&problems);
    QVERIFY2(problems.isEmpty(), qPrintable(problems.join("\n")));
    QVERIFY(lessons.size() >= 7);
    for (size_t i = 1; i < lessons.size(); ++i) QVERIFY(lessons[i - 1].order <= lessons[i].order);
    int expectations = 0;
    for (const Lesson& l : lessons) {
      QVERIFY(!l.summary.isEmpty());
      for (const LessonStep& s : l.steps) {
        QVERIFY2(!s.text.isEmpty(), qPrintable(l.title + ": " + s.title));
        expectations += int(s.expectations.size());
      }
    }
    QVERIFY(expectations >= 14);
  }

  // Measures against the history computed here: the loss is the mean of the last 20 points.
  void measuresTheLossFromTheHistory() {
    LessonError error;
    const auto lesson = parseLesson(QString::fromLatin1(kGood), QStringLiteral("t.md"), &error);
    RunSession session(QStringLiteral("L"));
    LessonPlayer player(&session);
    player.load(*lesson);
    player.start();
    QVERIFY(studio_test::wait_until([&] { return !player.busy(); }, 60000));
    QVERIFY2(player.failure().isEmpty(), qPrintable(player.failure()));
    const auto& points = session.history().points();
    QCOMPARE(int(points.size()), 12);
    QCOMPARE(session.state().step, int64_t(12));
    double last20 = 0, first10 = 0;
    for (const auto& p : points) last20 += p.loss / 12.0;
    for (int i = 0; i < 10; ++i) first10 += points[size_t(i)].loss / 10.0;
    QString why;
    const auto loss = measureRun("loss", session, MeasureBaseline{}, &why);
    QVERIFY(loss.has_value());
    QVERIFY(std::abs(*loss - last20) < 1e-9);
    QVERIFY(std::abs(*measureRun("loss_drop", session, {}, &why) - (first10 - last20)) < 1e-9);
    QCOMPARE(*measureRun("step", session, {}, &why), 12.0);
    // No validation yet, and a baseline without a loss: a reason, not a number.
    QVERIFY(!measureRun("valid_loss", session, {}, &why).has_value());
    QVERIFY(why.contains("evaluate"));
    QVERIFY(!measureRun("loss_change", session, {}, &why).has_value());
    QVERIFY(!measureRun("routes_outside", session, {}, &why).has_value());
    QVERIFY(why.contains("partition"));
    QCOMPARE(int(player.results().size()), 1);
    QVERIFY(player.results()[0].passed);
  }

  // Skip stops a training step early and leaves its expectation unchecked; replayStep reopens
  // the run as it was when the step began.
  void skipsAndReplays() {
    const QString text = QString::fromLatin1(kGood) +
                         "\n## More\ndo: train 100000\nexpect: step > 0 | trained more\n\nText.\n";
    LessonError error;
    const auto lesson = parseLesson(text, QStringLiteral("t.md"), &error);
    QVERIFY2(lesson, qPrintable(error.text()));
    RunSession session(QStringLiteral("L"));
    LessonPlayer player(&session);
    player.load(*lesson);
    player.start();
    QVERIFY(studio_test::wait_until([&] { return !player.busy(); }, 60000));
    player.next();
    QVERIFY(studio_test::wait_until([&] { return session.state().step >= 20; }, 60000));
    player.skip();
    QVERIFY(!player.busy());
    QVERIFY(!player.results()[0].checked);
    QCOMPARE(player.results()[0].why, QStringLiteral("skipped"));
    session.waitForIdle();
    const int64_t stopped = session.state().step;
    QVERIFY(stopped >= 20 && stopped < 100012);
    player.replayStep();  // back to step 12, training again
    QCOMPARE(session.state().step, int64_t(12));
    QVERIFY(player.busy());
    QVERIFY(studio_test::wait_until([&] { return session.state().step >= 30; }, 60000));
    player.skip();
    session.waitForIdle();
    QVERIFY(!session.isRunning());
  }

  // An action the engine refuses ends the step with its reason, and the lesson stays usable.
  void reportsARefusedAction() {
    const QString text = QString::fromLatin1(kGood) + "\n## Bad\ndo: freeze\n\nText.\n";
    const auto lesson = parseLesson(text, QStringLiteral("t.md"), nullptr);
    QVERIFY(lesson);
    RunSession session(QStringLiteral("L"));
    LessonPlayer player(&session);
    player.load(*lesson);
    player.start();
    QVERIFY(studio_test::wait_until([&] { return !player.busy(); }, 60000));
    player.next();
    QVERIFY(studio_test::wait_until([&] { return !player.busy(); }, 60000));
    QVERIFY2(!player.failure().isEmpty(), "a freeze on a run that is not UniPool-lock is refused");
    player.back();
    QVERIFY(studio_test::wait_until([&] { return !player.busy(); }, 60000));
    QVERIFY(player.failure().isEmpty());
  }

  void playLesson_data() {
    QTest::addColumn<QString>("path");
    for (const Lesson& l : shippedLessons())
      QTest::newRow(qPrintable(QFileInfo(l.path).completeBaseName())) << l.path;
    // A teacher checks a lesson of their own: UNIPOOL_LESSON=my.md tst_lessons playLesson:custom
    const QString own = qEnvironmentVariable("UNIPOOL_LESSON");
    if (!own.isEmpty()) QTest::newRow("custom") << own;
  }
  void playLesson() {
    QFETCH(QString, path);
    LessonError error;
    const auto lesson = loadLesson(path, &error);
    QVERIFY2(lesson, qPrintable(error.text()));
    RunSession session(QStringLiteral("lesson"));
    LessonPlayer player(&session);
    player.setAutoAdvance(true);
    player.load(*lesson);
    player.start();
    QVERIFY(studio_test::wait_until(
        [&] { return player.finished() || !player.failure().isEmpty(); }, 400000));
    QVERIFY2(player.failure().isEmpty(), qPrintable(player.failure()));
    int checked = 0;
    for (const auto& [step, r] : player.log()) {
      const QString where =
          QStringLiteral("%1 step %2 (line %3): %4, measured %5 %6")
              .arg(lesson->title)
              .arg(step + 1)
              .arg(r.expectation.line)
              .arg(r.expectation.describe())
              .arg(r.measured ? QString::number(*r.measured, 'g', 4) : QString("-"))
              .arg(r.why);
      qInfo("%s", qPrintable(where));
      QVERIFY2(r.checked && r.passed, qPrintable(where));
      ++checked;
    }
    QVERIFY(checked >= 1);
  }
};

QTEST_GUILESS_MAIN(TestLessons)
#include "tst_lessons.moc"
