#include "views/main_window.h"

#include <qcustomplot.h>

#include <QAction>
#include <QCloseEvent>
#include <QDockWidget>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenuBar>
#include <QMessageBox>
#include <QScrollArea>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QThread>
#include <algorithm>

#include "session/run_session.h"
#include "unipool/model_file.h"
#include "views/checkpoint_inspector_view.h"
#include "views/classroom.h"
#include "views/compare_view.h"
#include "views/controls_panel.h"
#include "views/domain_view.h"
#include "views/downloaded_model_view.h"
#include "views/experiments_view.h"
#include "views/loss_curves_view.h"
#include "views/new_run_form.h"
#include "views/plot_style.h"
#include "views/pool_balance_view.h"
#include "views/redundancy_view.h"
#include "views/routing_heatmap_view.h"
#include "views/token_inspector_view.h"

namespace unipool::studio {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  // Training uses every core but one, which stays the window's (its frames and the plots):
  // on a 2-core machine that is 1 thread, as before the engine shared its work out.
  session_ = new RunSession(QStringLiteral("A"), std::max(1, QThread::idealThreadCount() - 1), this);
  controls_ = new ControlsPanel(session_, this);
  heatmap_ = new RoutingHeatmapView(session_, this);
  balance_ = new PoolBalanceView(session_, this);
  loss_ = new LossCurvesView(this);
  loss_->addSession(session_, categoryColor(0));
  tokens_ = new TokenInspectorView(session_, this);
  domains_ = new DomainView(session_, this);
  compare_ = new CompareView(session_, this);
  inspector_ = new CheckpointInspectorView(this);
  redundancy_ = new RedundancyView(this);
  downloaded_ = new DownloadedModelView(this);
  experiments_ = new ExperimentsView(session_, this);

  auto* bottom = new QSplitter(Qt::Horizontal, this);
  bottom->addWidget(balance_);
  bottom->addWidget(loss_);
  auto* routing = new QSplitter(Qt::Vertical, this);
  routing->addWidget(heatmap_);
  routing->addWidget(bottom);
  routing->setStretchFactor(0, 3);
  routing->setStretchFactor(1, 2);
  tabs_ = new QTabWidget(this);
  tabs_->addTab(routing, tr("Routing"));
  tabs_->addTab(tokens_, tr("Tokens"));
  tabs_->addTab(domains_, tr("Domains"));
  tabs_->addTab(compare_, tr("Compare"));
  tabs_->addTab(inspector_, tr("Checkpoint"));
  tabs_->addTab(redundancy_, tr("Redundancy"));
  tabs_->addTab(downloaded_, tr("Downloaded model"));
  tabs_->addTab(experiments_, tr("Experiments"));
  setCentralWidget(tabs_);

  auto* scroll = new QScrollArea(this);
  scroll->setWidget(controls_);
  scroll->setWidgetResizable(true);
  scroll->setMinimumWidth(controls_->sizeHint().width() + 20);
  auto* dock = new QDockWidget(tr("Controls"), this);
  dock->setObjectName(QStringLiteral("controls"));
  dock->setWidget(scroll);
  dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, dock);

  // Opening a file that reads in the window but fails deeper fails twice (the run and the
  // inspector): one dialog per file is enough.
  connect(session_, &RunSession::failed, this, [this](const QString& what, const QString& message) {
    if (what == QLatin1String("Open checkpoint")) {
      if (!reportOpenFailureOnce(opening_path_)) return;
    }
    showError(what, message);
  });
  for (int i = 0; i < CompareView::kOthers; ++i) {
    const QString name = i == 0 ? tr("Run B") : tr("Run C");
    connect(compare_->other(i), &RunSession::failed, this,
            [this, name](const QString& what, const QString& message) {
              showError(tr("%1: %2").arg(name, what), message);
            });
  }
  connect(session_, &RunSession::halted, this,
          [this](const QString& reason) { showError(tr("Training paused"), reason); });
  connect(session_, &RunSession::saved, this, [this](const QString& path) {
    current_path_ = path;
    rememberRecent(path);
    statusBar()->showMessage(tr("Saved %1").arg(path), 5000);
    updateTitle();
  });
  connect(session_, &RunSession::watchProgress, this, [this](qint64 read, qint64 size) {
    statusBar()->showMessage(tr("Reading the run log: %1 of %2 MB (%3%)")
                                 .arg(read >> 20)
                                 .arg(size >> 20)
                                 .arg(100 * read / std::max<qint64>(size, 1)),
                             2000);
  });
  connect(session_, &RunSession::stateChanged, this, [this] {
    // Save writes without asking only to the file this run came from: a run created from the
    // form (or one that replaced an opened file) must not overwrite that file.
    const QString& source = session_->state().source;
    current_path_ = source.endsWith(QLatin1String(".safetensors")) ? source : QString();
    updateTitle();
  });
  connect(inspector_, &CheckpointInspectorView::failed, this,
          [this](const QString& path, const QString& reason) {
            if (!reportOpenFailureOnce(path)) return;
            showError(tr("Cannot open checkpoint"), tr("%1\n\n%2").arg(path, reason));
          });
  connect(inspector_, &CheckpointInspectorView::redundancyRequested, this,
          &MainWindow::openMoeCheckpoint);
  connect(redundancy_, &RedundancyView::failed, this,
          [this](const QString& path, const QString& why) {
            if (why != kCancelled)  // a Cancel is the user's own doing: no dialog
              showError(tr("Cannot open MoE checkpoint"), tr("%1\n\n%2").arg(path, why));
          });
  connect(downloaded_, &DownloadedModelView::failed, this,
          [this](const QString& what, const QString& message) {
            if (message != kDownloadedCancelled) showError(what, message);
          });
  // A model we cannot run (a switch we do not support, a missing tensor): say why, and show
  // what can still be seen of it, its experts, in the Redundancy tab.
  connect(downloaded_, &DownloadedModelView::openFailed, this,
          [this](const QString& path, const QString& message) {
            showError(tr("Cannot run this model"),
                      tr("%1\n\n%2\n\nIts experts are compared in the Redundancy tab.")
                          .arg(path, message));
            openMoeCheckpoint(path);
          });
  connect(downloaded_, &DownloadedModelView::probeRequested, this,
          [this](std::shared_ptr<const HfModel> model, std::vector<int32_t> ids,
                 const QString& label, int seq) {
            tabs_->setCurrentWidget(experiments_);
            experiments_->probeDownloaded(std::move(model), std::move(ids), label, seq);
          });
  connect(experiments_, &ExperimentsView::failed, this, &MainWindow::showError);
  // A watched run's checkpoints as they are written: the inspector follows them.
  connect(session_, &RunSession::watchedCheckpoint, inspector_, &CheckpointInspectorView::open);
  connect(session_, &RunSession::checkpointOpened, inspector_,
          &CheckpointInspectorView::showReport);
  connect(heatmap_, &RoutingHeatmapView::expertSelected, this, [this](int e) {
    if (e >= 0) statusBar()->showMessage(tr("Expert %1 highlighted in every layer").arg(e), 4000);
  });

  buildMenus();
  classroom_ = new Classroom(this, this);
  QSettings settings;
  recent_ = settings.value(QStringLiteral("recentFiles")).toStringList();
  last_dir_ = settings.value(QStringLiteral("lastDir")).toString();
  loss_->setSmoothing(settings.value(QStringLiteral("smoothing"), 0.6).toDouble());
  loss_->setLogScale(settings.value(QStringLiteral("logScale"), false).toBool());
  heatmap_->setMode(settings.value(QStringLiteral("heatmapMode"), 0).toInt() == 1
                        ? RoutingHeatmapView::GateMass
                        : RoutingHeatmapView::Share);
  resize(1400, 900);
  restoreGeometry(settings.value(QStringLiteral("geometry")).toByteArray());
  restoreState(settings.value(QStringLiteral("windowState")).toByteArray());
  rebuildRecentMenu();
  updateTitle();
}

MainWindow::~MainWindow() = default;

bool MainWindow::openCheckpoint(const QString& path) {
  // One decision, from config.json and the header only (the weights are never read here).
  const ModelFileCheck check = classify_model_file(path.toStdString());
  switch (check.kind) {
    case ModelFileKind::Downloaded:
      openDownloadedModel(path);
      rememberRecent(path);
      return true;
    case ModelFileKind::MoeCheckpoint:  // another format's experts: the Redundancy tab
      openMoeCheckpoint(path);
      return true;
    case ModelFileKind::NotAModel:  // its dialog at once; the current run is left alone
      showError(tr("Cannot open checkpoint"),
                tr("%1\n\n%2").arg(path, QString::fromStdString(check.why)));
      return false;
    case ModelFileKind::UniPool:
      break;
  }
  // Ours: the worker reads it once, opens the run and reports to the Checkpoint tab; a file
  // that fails deeper (a bad tensor) gets failed() and the current run stays.
  last_dir_ = QFileInfo(path).absolutePath();
  opening_path_ = path;
  failed_open_path_.clear();
  session_->post(cmd::OpenCheckpoint{path});  // current_path_ follows once the run is open
  inspector_->expect(path);
  rememberRecent(path);
  return true;
}

QWidget* MainWindow::tabPage(const QString& name) const {
  const QList<std::pair<QString, QWidget*>> pages = {
      {QStringLiteral("routing"), tabs_->widget(0)}, {QStringLiteral("tokens"), tokens_},
      {QStringLiteral("domains"), domains_},         {QStringLiteral("compare"), compare_},
      {QStringLiteral("checkpoint"), inspector_},    {QStringLiteral("redundancy"), redundancy_},
      {QStringLiteral("downloaded"), downloaded_},   {QStringLiteral("experiments"), experiments_}};
  for (const auto& [n, page] : pages)
    if (n == name) return page;
  return nullptr;
}

void MainWindow::openDownloadedModel(const QString& path) {
  last_dir_ = QFileInfo(path).absolutePath();
  tabs_->setCurrentWidget(downloaded_);
  downloaded_->open(path);
}

void MainWindow::openMoeCheckpoint(const QString& path) {
  last_dir_ = QFileInfo(path).absolutePath();
  tabs_->setCurrentWidget(redundancy_);
  redundancy_->open(path);
}

void MainWindow::saveCheckpoint(const QString& path) {
  QString target = path;
  if (!target.endsWith(QLatin1String(".safetensors"))) target += QLatin1String(".safetensors");
  last_dir_ = QFileInfo(target).absolutePath();
  session_->post(cmd::Save{target});  // saved() or failed() follows
}

bool MainWindow::reportOpenFailureOnce(const QString& path) {
  if (!path.isEmpty() && path == failed_open_path_) return false;
  failed_open_path_ = path;
  return true;
}

void MainWindow::showError(const QString& title, const QString& text) {
  last_error_ = text;
  statusBar()->showMessage(title + QStringLiteral(": ") + text.section(QLatin1Char('\n'), 0, 0),
                           10000);
  auto* box = new QMessageBox(QMessageBox::Warning, title, text, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->setObjectName(QStringLiteral("errorDialog"));
  box->open();  // window-modal but asynchronous: training and the event loop keep going
}

void MainWindow::updateTitle() {
  const RunState& s = session_->state();
  setWindowTitle(s.valid ? tr("UniPool Studio - %1").arg(s.source) : tr("UniPool Studio"));
}

void MainWindow::closeEvent(QCloseEvent* event) {
  QSettings settings;
  settings.setValue(QStringLiteral("geometry"), saveGeometry());
  settings.setValue(QStringLiteral("windowState"), saveState());
  settings.setValue(QStringLiteral("lastDir"), last_dir_);
  settings.setValue(QStringLiteral("smoothing"), loss_->smoothing());
  settings.setValue(QStringLiteral("logScale"), loss_->logScale());
  settings.setValue(QStringLiteral("heatmapMode"), int(heatmap_->mode()));
  // The sessions stop after their current step when they are destroyed with the window.
  session_->post(cmd::Pause{});
  compare_->pauseBoth();
  event->accept();
}

}  // namespace unipool::studio
