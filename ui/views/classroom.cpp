#include "views/classroom.h"

#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QFileDialog>
#include <QMenuBar>
#include <QProgressDialog>
#include <QSettings>
#include <QShortcut>
#include <QStatusBar>
#include <QTabWidget>

#include "session/lesson.h"
#include "session/lesson_player.h"
#include "session/run_session.h"
#include "views/animation_export.h"
#include "views/checkpoint_inspector_view.h"
#include "views/compare_view.h"
#include "views/controls_panel.h"
#include "views/domain_view.h"
#include "views/downloaded_model_view.h"
#include "views/experiments_view.h"
#include "views/lesson_controller.h"
#include "views/live_controls.h"
#include "views/loss_curves_view.h"
#include "views/main_window.h"
#include "views/new_run_form.h"
#include "views/pool_balance_view.h"
#include "views/routing_heatmap_view.h"
#include "views/token_inspector_view.h"

namespace unipool::studio {

namespace {
constexpr double kPresenterFontScale = 1.5;
constexpr double kPresenterLineWidth = 3.5;
const char* kPresenterKey = "presenterMode";

// The application's font size before presenter mode ever changed it (one per process: a second
// window must not take the enlarged size for the normal one).
double normalFontSize() {
  static const double size = QApplication::font().pointSizeF();
  return size;
}
}  // namespace

Classroom::Classroom(MainWindow* window) : QObject(window), window_(window) {
  lessons_ = new LessonController(window, window->session(), window->tabs());
  // By page, not by position: tabs were added since (Redundancy, Downloaded model).
  const QStringList tabs = lessonTabs();
  for (const QString& name : tabs) lessons_->addTab(name, window->tabPage(name));
  // A lesson's exported model ('probe exported') is shown in the Downloaded model tab.
  connect(lessons_->player(), &LessonPlayer::exportedModelReady, window,
          &MainWindow::openDownloadedModel);
  lessons_->addWidget(QStringLiteral("heatmap"), window->heatmap());
  lessons_->addWidget(QStringLiteral("balance"), window->balance());
  lessons_->addWidget(QStringLiteral("loss"), window->loss());
  lessons_->addWidget(QStringLiteral("tokens"), window->tokens());
  lessons_->addWidget(QStringLiteral("controls"), window->controls());
  lessons_->addWidget(QStringLiteral("live"), window->controls()->live());
  lessons_->addWidget(QStringLiteral("form"), window->controls()->form());
  lessons_->addWidget(QStringLiteral("experiments"), window->experiments());
  lessons_->addWidget(QStringLiteral("compare"), window->compare());
  connect(lessons_, &LessonController::failed, window, &MainWindow::showError);
  buildMenus();
  buildShortcuts();
  // Every plot replot re-applies the line widths, so curves a view adds later follow too.
  for (QCustomPlot* plot : window->findChildren<QCustomPlot*>())
    connect(plot, &QCustomPlot::beforeReplot, this, [this, plot] {
      if (!presenter_) return;
      for (int i = 0; i < plot->graphCount(); ++i) {
        QPen pen = plot->graph(i)->pen();
        if (pen.widthF() < kPresenterLineWidth) pen.setWidthF(kPresenterLineWidth);
        plot->graph(i)->setPen(pen);
      }
    });
  setPresenterMode(QSettings().value(QLatin1String(kPresenterKey), false).toBool());
}

void Classroom::buildMenus() {
  QMenu* lessons = window_->menuBar()->addMenu(tr("&Lessons"));
  lessons_->fillMenu(lessons);
  QMenu* view = window_->menuBar()->addMenu(tr("&View"));
  QAction* presenter = view->addAction(tr("&Presenter mode"));
  presenter->setObjectName(QStringLiteral("presenterMode"));
  presenter->setCheckable(true);
  presenter->setShortcut(QKeySequence(Qt::Key_F5));
  presenter->setChecked(presenter_);
  connect(presenter, &QAction::toggled, this, &Classroom::setPresenterMode);
  QMenu* file = window_->menuBar()->actions().first()->menu();
  QAction* before =
      file->actions().size() > 2 ? file->actions().at(file->actions().size() - 2) : nullptr;
  QAction* history = new QAction(tr("Export heatmap &history as animation..."), file);
  QAction* save_recipe = new QAction(tr("Save run &recipe..."), file);
  save_recipe->setToolTip(
      tr("The run's settings, seed, data and live changes: students who open "
         "it get the same run, step for step"));
  QAction* open_recipe = new QAction(tr("Open run re&cipe..."), file);
  QAction* open_lesson = new QAction(tr("Open &lesson..."), file);
  connect(open_lesson, &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getOpenFileName(window_, tr("Open lesson"), QString(),
                                                      tr("Lessons (*.md);;All files (*)"));
    if (!path.isEmpty()) lessons_->openLesson(path);
  });
  file->insertActions(before, {open_lesson, open_recipe, save_recipe, history});
  RunSession* session = window_->session();
  connect(save_recipe, &QAction::triggered, this, [this, session] {
    QString path = QFileDialog::getSaveFileName(window_, tr("Save run recipe"), QString(),
                                                tr("Run recipes (*.unipool.json)"));
    if (path.isEmpty()) return;
    if (!path.endsWith(QLatin1String(".json"))) path += QLatin1String(".unipool.json");
    session->post(cmd::SaveRecipe{path});
  });
  connect(open_recipe, &QAction::triggered, this, [this, session] {
    const QString path = QFileDialog::getOpenFileName(window_, tr("Open run recipe"), QString(),
                                                      tr("Run recipes (*.unipool.json *.json)"));
    if (!path.isEmpty()) session->post(cmd::OpenRecipe{path});
  });
  connect(session, &RunSession::recipeSaved, this, [this](const QString& path) {
    window_->statusBar()->showMessage(tr("Recipe saved: %1").arg(path), 5000);
  });
  connect(history, &QAction::triggered, this, [this] {
    QString filter = tr("Animated GIF (*.gif)");
    if (ffmpegAvailable()) filter += tr(";;MP4 video (*.mp4);;WebM video (*.webm)");
    const QString path =
        QFileDialog::getSaveFileName(window_, tr("Export heatmap history"), QString(), filter);
    if (path.isEmpty()) return;
    const QString error = exportHistory(path);
    if (!error.isEmpty()) window_->showError(tr("Export heatmap history"), error);
  });
}

void Classroom::buildShortcuts() {
  RunSession* session = window_->session();
  LiveControls* live = window_->controls()->live();
  auto add = [this](const QKeySequence& keys, auto&& slot) {
    auto* shortcut = new QShortcut(keys, window_);
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

void Classroom::setPresenterMode(bool on) {
  presenter_ = on;
  QSettings().setValue(QLatin1String(kPresenterKey), on);
  QFont font = QApplication::font();
  font.setPointSizeF(normalFontSize() * (on ? kPresenterFontScale : 1.0));
  QApplication::setFont(font);
  for (QCustomPlot* plot : window_->findChildren<QCustomPlot*>()) {
    for (QCPAxisRect* rect : plot->axisRects()) {
      for (QCPAxis* axis : rect->axes()) {
        QFont f = axis->tickLabelFont();
        f.setPointSizeF(font.pointSizeF());
        axis->setTickLabelFont(f);
        axis->setLabelFont(f);
      }
    }
    if (!on) {  // back to the views' own widths: they set them on their next refresh
      for (int i = 0; i < plot->graphCount(); ++i) {
        QPen pen = plot->graph(i)->pen();
        if (pen.widthF() >= kPresenterLineWidth) pen.setWidthF(1.5);
        plot->graph(i)->setPen(pen);
      }
    }
    plot->replot(QCustomPlot::rpQueuedReplot);
  }
  for (QAction* a : window_->findChildren<QAction*>(QStringLiteral("presenterMode"))) {
    const QSignalBlocker block(a);
    a->setChecked(on);
  }
}

QString Classroom::exportHistory(const QString& path, int frame_ms) {
  RunSession* session = window_->session();
  const int n = int(session->history().snapshots().size());
  if (n == 0) return tr("The run has no routing history yet: train a few steps first.");
  RoutingHeatmapView* heatmap = window_->heatmap();
  QCustomPlot* plot = heatmap->plot();
  const QSize size = plot->size().isValid() && plot->width() > 100 ? plot->size() : QSize(900, 500);
  QProgressDialog progress(tr("Rendering %1 frames...").arg(n), tr("Cancel"), 0, n, window_);
  progress.setWindowModality(Qt::WindowModal);
  progress.setMinimumDuration(500);
  std::vector<QImage> frames;
  frames.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    progress.setValue(i);
    if (progress.wasCanceled()) {
      heatmap->showSnapshot(-1);
      return tr("Cancelled.");
    }
    heatmap->showSnapshot(i);
    frames.push_back(plot->toPixmap(size.width(), size.height()).toImage());
  }
  heatmap->showSnapshot(-1);
  progress.setValue(n);
  QString error;
  const bool video = !path.endsWith(QLatin1String(".gif"), Qt::CaseInsensitive);
  const bool ok = video ? writeVideo(path, frames, std::max(1, 1000 / frame_ms), &error)
                        : writeAnimatedGif(path, frames, frame_ms, &error);
  return ok ? QString() : error;
}

}  // namespace unipool::studio
