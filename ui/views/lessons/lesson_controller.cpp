#include "views/lessons/lesson_controller.h"

#include <QDockWidget>
#include <QFileDialog>
#include <QMainWindow>
#include <QMenu>
#include <QTabWidget>

#include "session/lessons/lesson.h"
#include "session/lessons/lesson_player.h"
#include "views/lessons/lesson_highlight.h"
#include "views/lessons/lesson_panel.h"

namespace unipool::studio {

LessonController::LessonController(QMainWindow* window, RunSession* session, QTabWidget* tabs)
    : QObject(window), window_(window), tabs_(tabs) {
  player_ = new LessonPlayer(session, this);
  panel_ = new LessonPanel(player_, window);
  highlight_ = new LessonHighlight(window);
  dock_ = new QDockWidget(tr("Lesson"), window);
  dock_->setObjectName(QStringLiteral("lesson"));
  dock_->setWidget(panel_);
  window->addDockWidget(Qt::RightDockWidgetArea, dock_);
  dock_->hide();
  connect(player_, &LessonPlayer::stepStarted, this, &LessonController::pointAtStep);
  connect(player_, &LessonPlayer::stopped, this, [this] { highlight_->pointAt(nullptr); });
  connect(player_, &LessonPlayer::lessonFinished, this, [this] { highlight_->pointAt(nullptr); });
  connect(player_, &LessonPlayer::tabRequested, this, [this](const QString& tab) {
    if (QWidget* page = tabs_by_name_.value(tab)) tabs_->setCurrentWidget(page);
  });
  connect(dock_, &QDockWidget::visibilityChanged, this, [this](bool visible) {
    if (!visible && !dock_->isVisible()) highlight_->pointAt(nullptr);
  });
}

void LessonController::addWidget(const QString& name, QWidget* widget) {
  widgets_.insert(name, widget);
}

void LessonController::addTab(const QString& name, QWidget* page) {
  tabs_by_name_.insert(name, page);
}

void LessonController::fillMenu(QMenu* menu) {
  QStringList problems;
  for (const Lesson& lesson : shippedLessons(&problems)) {
    menu->addAction(QStringLiteral("%1. %2").arg(lesson.order).arg(lesson.title), this,
                    [this, lesson] { startLesson(lesson); })
        ->setToolTip(lesson.summary);
  }
  menu->addSeparator();
  menu->addAction(tr("Open &lesson file..."), this, [this] {
    const QString path = QFileDialog::getOpenFileName(window_, tr("Open lesson"), QString(),
                                                      tr("Lessons (*.md);;All files (*)"));
    if (!path.isEmpty()) openLesson(path);
  });  // File > Open lesson... does the same
  menu->addAction(tr("Show the lesson panel"), dock_, &QDockWidget::show);
  // A shipped lesson that does not parse is a bug of ours: say so rather than hide it.
  if (!problems.isEmpty()) Q_EMIT failed(tr("Lessons"), problems.join(QLatin1Char('\n')));
}

bool LessonController::openLesson(const QString& path) {
  LessonError error;
  const auto lesson = loadLesson(path, &error);
  if (!lesson) {
    Q_EMIT failed(tr("Cannot open lesson"), error.text());
    return false;
  }
  startLesson(*lesson);
  return true;
}

void LessonController::startLesson(const Lesson& lesson) {
  player_->load(lesson);
  dock_->show();
  dock_->raise();
  player_->start();
}

void LessonController::pointAtStep() {
  const LessonStep* step = player_->currentStep();
  highlight_->pointAt(step && !step->point.isEmpty() ? widgets_.value(step->point) : nullptr);
}

}  // namespace unipool::studio
