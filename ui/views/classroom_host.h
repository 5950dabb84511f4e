// What the classroom (lessons, presenter mode, shortcuts, animation export) needs from the
// window, and nothing more: MainWindow implements it, so the classroom never digs through the
// menu bar or a dozen getters.
#pragma once

#include <QList>
#include <QString>

class QAction;
class QMainWindow;
class QMenu;
class QTabWidget;
class QWidget;

namespace unipool::studio {

class LiveControls;
class RoutingHeatmapView;
class RunSession;

class ClassroomHost {
 public:
  virtual ~ClassroomHost() = default;
  virtual QMainWindow* hostWindow() = 0;  // dialogs' parent, docks, shortcuts, plots' root
  virtual RunSession* session() const = 0;
  virtual QTabWidget* tabs() const = 0;
  // The tab page called `name` (routing, tokens, ...); nullptr for another name.
  virtual QWidget* tabPage(const QString& name) const = 0;
  // A widget a lesson may highlight: heatmap, balance, loss, tokens, controls, live, form,
  // experiments, compare; nullptr for another name.
  virtual QWidget* lessonWidget(const QString& name) const = 0;
  virtual RoutingHeatmapView* heatmap() const = 0;
  virtual LiveControls* liveControls() const = 0;
  // A new top-level menu after the window's own.
  virtual QMenu* addTopMenu(const QString& title) = 0;
  // Actions added to the File menu, before its closing Quit.
  virtual void addFileActions(const QList<QAction*>& actions) = 0;
  virtual void showError(const QString& title, const QString& text) = 0;
  virtual void showStatus(const QString& text) = 0;
  virtual void openDownloadedModel(const QString& path) = 0;
};

// Names lessonWidget() answers, in the order lessons list them.
inline QList<QString> classroomWidgetNames() {
  return {QStringLiteral("heatmap"),     QStringLiteral("balance"), QStringLiteral("loss"),
          QStringLiteral("tokens"),      QStringLiteral("controls"), QStringLiteral("live"),
          QStringLiteral("form"),        QStringLiteral("experiments"),
          QStringLiteral("compare")};
}

}  // namespace unipool::studio
