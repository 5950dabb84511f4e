// The automation's lesson mode (--lesson NAME --lesson-step N): plays a lesson up to a step,
// then takes the screenshot like any other run.
#include <QFileInfo>
#include <QTimer>

#include "automation.h"
#include "session/lessons/lesson.h"
#include "session/lessons/lesson_player.h"
#include "views/classroom.h"
#include "views/lessons/lesson_controller.h"
#include "views/main_window.h"

namespace unipool::studio {

void Automation::beginLesson() {
  LessonController* lessons = window_->classroom()->lessons();
  LessonPlayer* player = lessons->player();
  connect(player, &LessonPlayer::stepFinished, this, [this, player](int index) {
    if (!player->failure().isEmpty()) return finish(1, player->failure());
    if (index + 1 < lesson_step_ && index + 1 < player->stepCount()) {
      QTimer::singleShot(0, player, &LessonPlayer::next);
      return;
    }
    trained_ = true;
    afterTraining();
  });
  bool found = false;
  for (const Lesson& l : shippedLessons()) {
    if (QFileInfo(l.path).completeBaseName() == lesson_) {
      lessons->startLesson(l);
      found = true;
    }
  }
  if (!found && !lessons->openLesson(lesson_)) finish(1, window_->lastError());
}

}  // namespace unipool::studio
