// What a teacher needs beyond the views: lessons (LessonController), presenter mode (larger
// fonts and thicker plot lines for a projector; one switch, remembered), keyboard shortcuts
// for the class (Space: start/pause, S: one step, PageDown/PageUp: next/previous lesson step,
// as presentation clickers send them) and the heatmap's history as an animation for slides.
#pragma once

#include <QObject>
#include <QString>

class QMenu;

namespace unipool::studio {

class LessonController;
class MainWindow;

class Classroom : public QObject {
  Q_OBJECT
 public:
  explicit Classroom(MainWindow* window);

  LessonController* lessons() const { return lessons_; }
  bool presenterMode() const { return presenter_; }
  void setPresenterMode(bool on);
  // Renders every routing snapshot of the run's history through the heatmap and writes them
  // as an animated GIF (.gif) or, with the ffmpeg program, a video (.mp4, .webm). Returns an
  // empty string or the reason it failed; the heatmap goes back to what it showed.
  QString exportHistory(const QString& path, int frame_ms = 150);

 private:
  void buildMenus();
  void buildShortcuts();
  void stylePlots();

  MainWindow* window_;
  LessonController* lessons_;
  bool presenter_ = false;
};

}  // namespace unipool::studio
