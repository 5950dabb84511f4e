// The classroom's menus: Lessons, View > Presenter mode, and its File entries (open a lesson,
// run recipes, the heatmap's history as an animation).
#include <QAction>
#include <QFileDialog>
#include <QMainWindow>
#include <QMenu>

#include "session/run_session.h"
#include "views/animation_export.h"
#include "views/classroom.h"
#include "views/classroom_host.h"
#include "views/lessons/lesson_controller.h"
#include "views/presenter_mode.h"

namespace unipool::studio {

void Classroom::buildMenus() {
  QWidget* window = host_->hostWindow();
  lessons_->fillMenu(host_->addTopMenu(tr("&Lessons")));
  host_->addTopMenu(tr("&View"))->addAction(presenter_->action());

  auto* open_lesson = new QAction(tr("Open &lesson..."), this);
  auto* open_recipe = new QAction(tr("Open run re&cipe..."), this);
  auto* save_recipe = new QAction(tr("Save run &recipe..."), this);
  save_recipe->setToolTip(
      tr("The run's settings, seed, data and live changes: students who open "
         "it get the same run, step for step"));
  auto* history = new QAction(tr("Export heatmap &history as animation..."), this);
  host_->addFileActions({open_lesson, open_recipe, save_recipe, history});

  connect(open_lesson, &QAction::triggered, this, [this, window] {
    const QString path = QFileDialog::getOpenFileName(window, tr("Open lesson"), QString(),
                                                      tr("Lessons (*.md);;All files (*)"));
    if (!path.isEmpty()) lessons_->openLesson(path);
  });
  RunSession* session = host_->session();
  connect(save_recipe, &QAction::triggered, this, [window, session] {
    QString path = QFileDialog::getSaveFileName(window, tr("Save run recipe"), QString(),
                                                tr("Run recipes (*.unipool.json)"));
    if (path.isEmpty()) return;
    if (!path.endsWith(QLatin1String(".json"))) path += QLatin1String(".unipool.json");
    session->post(cmd::SaveRecipe{path});
  });
  connect(open_recipe, &QAction::triggered, this, [window, session] {
    const QString path = QFileDialog::getOpenFileName(window, tr("Open run recipe"), QString(),
                                                      tr("Run recipes (*.unipool.json *.json)"));
    if (!path.isEmpty()) session->post(cmd::OpenRecipe{path});
  });
  connect(session, &RunSession::recipeSaved, this,
          [this](const QString& path) { host_->showStatus(tr("Recipe saved: %1").arg(path)); });
  connect(history, &QAction::triggered, this, [this, window] {
    QString filter = tr("Animated GIF (*.gif)");
    if (ffmpegAvailable()) filter += tr(";;MP4 video (*.mp4);;WebM video (*.webm)");
    const QString path =
        QFileDialog::getSaveFileName(window, tr("Export heatmap history"), QString(), filter);
    if (path.isEmpty()) return;
    const QString error = exportHistory(path);
    if (!error.isEmpty()) host_->showError(tr("Export heatmap history"), error);
  });
}

}  // namespace unipool::studio
