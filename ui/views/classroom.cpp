#include "views/classroom.h"

#include <QMainWindow>
#include <QPushButton>
#include <QShortcut>
#include <QTabWidget>

#include "session/lessons/lesson.h"
#include "session/lessons/lesson_player.h"
#include "session/run_session.h"
#include "views/classroom_host.h"
#include "views/history_animation.h"
#include "views/lessons/lesson_controller.h"
#include "views/live_controls.h"
#include "views/presenter_mode.h"

namespace unipool::studio {

Classroom::Classroom(ClassroomHost* host, QObject* parent) : QObject(parent), host_(host) {
  QMainWindow* window = host->hostWindow();
  lessons_ = new LessonController(window, host->session(), host->tabs());
  // By page, not by position: tabs were added since (Redundancy, Downloaded model).
  for (const QString& name : lessonTabs()) lessons_->addTab(name, host->tabPage(name));
  for (const QString& name : classroomWidgetNames())
    lessons_->addWidget(name, host->lessonWidget(name));
  // A lesson's exported model ('probe exported') is shown in the Downloaded model tab.
  connect(lessons_->player(), &LessonPlayer::exportedModelReady, this,
          [host](const QString& path) { host->openDownloadedModel(path); });
  connect(lessons_, &LessonController::failed, this,
          [host](const QString& title, const QString& text) { host->showError(title, text); });
  presenter_ = new PresenterMode(window);
  buildMenus();
  buildShortcuts();
}

bool Classroom::presenterMode() const { return presenter_->on(); }
void Classroom::setPresenterMode(bool on) { presenter_->set(on); }

void Classroom::buildShortcuts() {
  RunSession* session = host_->session();
  LiveControls* live = host_->liveControls();
  auto add = [this](const QKeySequence& keys, auto&& slot) {
    auto* shortcut = new QShortcut(keys, host_->hostWindow());
    connect(shortcut, &QShortcut::activated, this, slot);
  };
  add(QKeySequence(Qt::Key_Space), [session, live] {
    if (session->isRunning())
      live->pauseButton()->click();
    else if (live->startButton()->isEnabled())
      live->startButton()->click();
  });
  add(QKeySequence(Qt::Key_S), [live] {
    if (live->stepButton()->isEnabled()) live->stepButton()->click();
  });
  LessonPlayer* player = lessons_->player();
  add(QKeySequence(Qt::Key_PageDown), [player] { player->next(); });
  add(QKeySequence(Qt::Key_N), [player] { player->next(); });
  add(QKeySequence(Qt::Key_PageUp), [player] { player->back(); });
}

QString Classroom::exportHistory(const QString& path, int frame_ms) {
  return exportHeatmapHistory(host_->heatmap(),
                              int(host_->session()->history().snapshots().size()),
                              host_->hostWindow(), path, frame_ms);
}

}  // namespace unipool::studio
