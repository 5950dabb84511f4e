// The classroom in the window, offscreen: a lesson opened from the menu's code path shows its
// step, opens the tab it asks for and outlines the widget it points at; a malformed lesson file
// gets a message naming its line and field and the studio stays usable; presenter mode
// enlarges the fonts and is remembered; Space starts and pauses; the heatmap's history
// exports as an animated GIF with one frame per snapshot.
#include <gif_lib.h>

#include <QApplication>
#include <QDockWidget>
#include <QPushButton>
#include <QSettings>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "session/lessons/lesson_player.h"
#include "session/run_session.h"
#include "studio_util.h"
#include "views/classroom.h"
#include "views/lessons/lesson_controller.h"
#include "views/lessons/lesson_highlight.h"
#include "views/lessons/lesson_panel.h"
#include "views/main_window.h"
#include "views/routing_heatmap_view.h"
#include "views/token_inspector_view.h"

using namespace unipool;
using namespace unipool::studio;

namespace {

const char* kLesson = R"(---
title: Window lesson
---

## Tokens first
run: preset=tiny seed=3 batch=4 seq=32 steps=100
do: create
do: tab tokens
point: tokens

Look at the tokens.

## Then the heatmap
do: train 30
do: tab routing
point: heatmap
expect: step > 29 | It trained 30 steps.

Look at the heatmap.

## More
do: train 20

Again.
)";

QString writeFile(const QTemporaryDir& dir, const QString& name, const QByteArray& text) {
  QFile f(dir.filePath(name));
  if (!f.open(QIODevice::WriteOnly)) return {};
  f.write(text);
  return f.fileName();
}

}  // namespace

class TestStudioLessons : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QSettings().clear();
  }

  void playsALessonInTheWindow() {
    QTemporaryDir dir;
    MainWindow w;
    w.resize(1300, 850);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    LessonController* lessons = w.classroom()->lessons();
    QVERIFY(lessons->openLesson(writeFile(dir, "w.md", kLesson)));
    LessonPlayer* player = lessons->player();
    QVERIFY(studio_test::wait_until([&] { return !player->busy(); }));
    QVERIFY(lessons->dock()->isVisible());
    QCOMPARE(lessons->panel()->heading(), QStringLiteral("Step 1 of 3: Tokens first"));
    QCOMPARE(w.tabs()->currentWidget(), static_cast<QWidget*>(w.tokens()));
    // The outline surrounds the Tokens view, in the window's coordinates.
    QVERIFY(studio_test::wait_until([&] { return lessons->highlight()->isVisible(); }, 3000));
    const QRect target(w.tokens()->mapTo(&w, QPoint(0, 0)), w.tokens()->size());
    QVERIFY(lessons->highlight()->targetRect().contains(target.adjusted(1, 1, -1, -1)));

    lessons->panel()->nextButton()->click();
    QVERIFY(studio_test::wait_until([&] { return !player->busy(); }, 60000));
    QCOMPARE(w.session()->state().step, int64_t(30));
    QCOMPARE(lessons->panel()->heading(), QStringLiteral("Step 2 of 3: Then the heatmap"));
    QCOMPARE(w.tabs()->currentIndex(), 0);
    QVERIFY(studio_test::wait_until([&] { return lessons->highlight()->isVisible(); }, 3000));
    const QRect heat(w.heatmap()->mapTo(&w, QPoint(0, 0)), w.heatmap()->size());
    QVERIFY(lessons->highlight()->targetRect().contains(heat.adjusted(1, 1, -1, -1)));
    QVERIFY2(lessons->panel()->expectationsText().contains(QStringLiteral("It trained 30 steps")),
             qPrintable(lessons->panel()->expectationsText()));
    QVERIFY(lessons->panel()->expectationsText().contains(QStringLiteral("10004")));  // a tick
    // Switching tabs hides the outline; coming back shows it again.
    w.tabs()->setCurrentIndex(1);
    QVERIFY(studio_test::wait_until([&] { return !lessons->highlight()->isVisible(); }, 3000));
    w.tabs()->setCurrentIndex(0);
    QVERIFY(studio_test::wait_until([&] { return lessons->highlight()->isVisible(); }, 3000));

    QTest::keyClick(&w, Qt::Key_PageDown);  // a presentation clicker's "next"
    QVERIFY(studio_test::wait_until([&] { return !player->busy(); }, 60000));
    QCOMPARE(w.session()->state().step, int64_t(50));
    // The history as an animated GIF: one frame per routing snapshot.
    const int snapshots = int(w.session()->history().snapshots().size());
    QVERIFY2(snapshots >= 2, qPrintable(QString::number(snapshots)));
    const QString gif = dir.filePath("history.gif");
    QCOMPARE(w.classroom()->exportHistory(gif, 100), QString());
    int error = 0;
    GifFileType* file = DGifOpenFileName(gif.toLocal8Bit().constData(), &error);
    QVERIFY(file);
    QCOMPARE(DGifSlurp(file), GIF_OK);
    QCOMPARE(file->ImageCount, snapshots);
    QVERIFY(file->SWidth > 100 && file->SHeight > 100);
    DGifCloseFile(file, &error);
  }

  void reportsAMalformedLessonAndStaysUsable() {
    QTemporaryDir dir;
    MainWindow w;
    w.show();
    const QString bad =
        writeFile(dir, "bad.md", QByteArray(kLesson).replace("do: train 30", "do: train thirty"));
    QVERIFY(!w.classroom()->lessons()->openLesson(bad));
    QVERIFY2(w.lastError().contains(QStringLiteral("bad.md, line 14, field 'do'")),
             qPrintable(w.lastError()));
    QVERIFY(!w.classroom()->lessons()->player()->hasLesson());
    // Still usable: a good lesson opens after it.
    QVERIFY(w.classroom()->lessons()->openLesson(writeFile(dir, "good.md", kLesson)));
    QVERIFY(studio_test::wait_until([&] { return w.session()->state().valid; }));
  }

  void presenterModeIsRememberedAndSpaceStartsAndPauses() {
    double normal = 0;
    {
      MainWindow w;
      w.show();
      normal = QApplication::font().pointSizeF();
      w.classroom()->setPresenterMode(true);
      QVERIFY(QApplication::font().pointSizeF() > normal * 1.4);
    }
    {
      MainWindow w;
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      QVERIFY(w.classroom()->presenterMode());  // remembered
      w.classroom()->setPresenterMode(false);
      QCOMPARE(QApplication::font().pointSizeF(), normal);
      studio_test::create_tiny(*w.session());
      QVERIFY(studio_test::wait_until([&] { return w.session()->state().valid; }));
      w.activateWindow();
      w.heatmap()->setFocus();
      QTest::keyClick(&w, Qt::Key_Space);
      QVERIFY(studio_test::wait_until([&] { return w.session()->isRunning(); }, 5000));
      QTest::keyClick(&w, Qt::Key_Space);
      QVERIFY(studio_test::wait_until([&] { return !w.session()->isRunning(); }, 5000));
    }
    QVERIFY(!QSettings().value("presenterMode").toBool());
  }
};

QTEST_MAIN(TestStudioLessons)
#include "tst_studio_lessons.moc"
