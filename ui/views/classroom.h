// What a teacher needs beyond the views: lessons (LessonController), presenter mode
// (views/presenter_mode.h), keyboard shortcuts for the class (Space: start/pause, S: one step,
// PageDown/PageUp: next/previous lesson step, as presentation clickers send them), and the
// File menu's classroom entries (lessons, run recipes, the heatmap's history as an animation:
// classroom_menus.cpp). It reaches the window only through ClassroomHost.
#pragma once

#include <QObject>
#include <QString>

namespace unipool::studio {

class ClassroomHost;
class LessonController;
class PresenterMode;

class Classroom : public QObject {
  Q_OBJECT
 public:
  explicit Classroom(ClassroomHost* host, QObject* parent);

  LessonController* lessons() const { return lessons_; }
  bool presenterMode() const;
  void setPresenterMode(bool on);
  // The heatmap's history as an animated GIF (.gif) or a video (.mp4, .webm; ffmpeg): see
  // views/history_animation.h. Returns an empty string or the reason it failed.
  QString exportHistory(const QString& path, int frame_ms = 150);

 private:
  void buildMenus();
  void buildShortcuts();

  ClassroomHost* host_;
  LessonController* lessons_;
  PresenterMode* presenter_;
};

}  // namespace unipool::studio
