// Lessons in the window: the Lessons menu (shipped lessons and File > Open Lesson), the lesson
// dock, the highlight on the widget a step points at and the tab a step opens. The window
// hands it the widgets by their lesson names (session/lesson.h: lessonWidgets()).
#pragma once

#include <QHash>
#include <QObject>
#include <QString>

class QDockWidget;
class QMainWindow;
class QMenu;
class QTabWidget;
class QWidget;

namespace unipool::studio {

class LessonHighlight;
class LessonPanel;
class LessonPlayer;
class RunSession;
struct Lesson;

class LessonController : public QObject {
  Q_OBJECT
 public:
  LessonController(QMainWindow* window, RunSession* session, QTabWidget* tabs);

  void addWidget(const QString& name, QWidget* widget);
  void addTab(const QString& name, QWidget* page);
  void fillMenu(QMenu* menu);

  // Opens and starts a lesson; a malformed file is reported through failed() and changes
  // nothing (the current lesson, if any, goes on).
  bool openLesson(const QString& path);
  void startLesson(const Lesson& lesson);

  LessonPlayer* player() const { return player_; }
  LessonPanel* panel() const { return panel_; }
  LessonHighlight* highlight() const { return highlight_; }
  QDockWidget* dock() const { return dock_; }

 Q_SIGNALS:
  void failed(const QString& title, const QString& message);

 private:
  void pointAtStep();

  QMainWindow* window_;
  QTabWidget* tabs_;
  LessonPlayer* player_;
  LessonPanel* panel_;
  LessonHighlight* highlight_;
  QDockWidget* dock_;
  QHash<QString, QWidget*> widgets_, tabs_by_name_;
};

}  // namespace unipool::studio
