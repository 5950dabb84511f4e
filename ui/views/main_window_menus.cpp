// MainWindow's File menu and what it writes: the menus, recent files, plot and metrics
// exports. The window's layout and the opening of files are in main_window.cpp.
#include <qcustomplot.h>

#include <QFileDialog>
#include <QFileInfo>
#include <QMenuBar>
#include <QStatusBar>
#include <QSaveFile>
#include <QSettings>

#include "session/metrics_export.h"
#include "session/run_session.h"
#include "views/checkpoint_inspector_view.h"
#include "views/classroom.h"
#include "views/compare_view.h"
#include "views/controls_panel.h"
#include "views/domain_view.h"
#include "views/experiments_view.h"
#include "views/live_controls.h"
#include "views/loss_curves_view.h"
#include "views/main_window.h"
#include "views/new_run_form.h"
#include "views/plot_style.h"
#include "views/pool_balance_view.h"
#include "views/redundancy_view.h"
#include "views/routing_heatmap_view.h"
#include "views/token_inspector_view.h"

namespace unipool::studio {

namespace {

constexpr int kMaxRecent = 8;

bool write_file(const QString& path, const QByteArray& bytes, QString* error) {
  QSaveFile file(path);  // atomic: an existing file is replaced only when all is written
  if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit()) {
    *error = file.errorString();
    return false;
  }
  return true;
}

}  // namespace

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file_menu_ = file;
  file->addAction(tr("&New run from the form"), QKeySequence::New, controls_->form(),
                  &NewRunForm::createRunFromForm);
  file->addAction(tr("&Open checkpoint..."), QKeySequence::Open, this, [this] {
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Open checkpoint"), last_dir_, tr("Checkpoints (*.safetensors);;All files (*)"));
    if (!path.isEmpty()) openCheckpoint(path);
  });
  file->addAction(tr("Open &MoE checkpoint (file)..."), this, [this] {
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Open MoE checkpoint"), last_dir_,
                                     tr("safetensors (*.safetensors);;All files (*)"));
    if (!path.isEmpty()) openMoeCheckpoint(path);
  });
  file->addAction(tr("Open MoE checkpoint &folder..."), this, [this] {
    const QString path =
        QFileDialog::getExistingDirectory(this, tr("Open MoE checkpoint folder"), last_dir_);
    if (!path.isEmpty()) openMoeCheckpoint(path);
  });
  file->addAction(tr("Open &downloaded model folder..."), this, [this] {
    const QString path =
        QFileDialog::getExistingDirectory(this, tr("Open a downloaded model (config.json, "
                                                   "safetensors, tokenizer.json)"), last_dir_);
    if (!path.isEmpty()) openCheckpoint(path);
  });
  file->addAction(tr("&Watch run..."), this, [this] {
    // A headless run (`unipool train --log FILE --log-routing-every N`), read-only, live.
    const QString path = QFileDialog::getOpenFileName(this, tr("Watch a run's log"), last_dir_,
                                                      tr("Training logs (*.jsonl);;All files (*)"));
    if (!path.isEmpty()) session_->watchRun(path);
  });
  recent_menu_ = file->addMenu(tr("Open &recent"));
  file->addAction(tr("&Save checkpoint"), QKeySequence::Save, this, [this] {
    if (!current_path_.endsWith(QLatin1String(".safetensors"))) {
      const QString path = QFileDialog::getSaveFileName(this, tr("Save checkpoint"), last_dir_,
                                                        tr("Checkpoints (*.safetensors)"));
      if (!path.isEmpty()) saveCheckpoint(path);
    } else {
      saveCheckpoint(current_path_);
    }
  });
  file->addAction(tr("Save checkpoint &as..."), QKeySequence::SaveAs, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Save checkpoint"), last_dir_,
                                                      tr("Checkpoints (*.safetensors)"));
    if (!path.isEmpty()) saveCheckpoint(path);
  });
  file->addSeparator();
  QMenu* plots = file->addMenu(tr("&Export plot"));
  for (const QString& name : plotNames()) {
    plots->addAction(name, this, [this, name] {
      const QString path = QFileDialog::getSaveFileName(
          this, tr("Export %1").arg(name), last_dir_,
          tr("PNG image (*.png);;PDF document (*.pdf);;SVG drawing (*.svg)"));
      if (!path.isEmpty()) exportPlot(name, path);
    });
  }
  file->addAction(tr("Export metrics as &CSV..."), this, [this] {
    const QString path =
        QFileDialog::getSaveFileName(this, tr("Export metrics"), last_dir_, tr("CSV (*.csv)"));
    if (!path.isEmpty()) exportMetricsCsv(path);
  });
  file->addAction(tr("Export probe results..."), this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export probe results"), last_dir_,
                                                      tr("CSV (*.csv);;JSON (*.json)"));
    if (path.isEmpty()) return;
    QString error;
    const QString text = path.endsWith(QLatin1String(".json")) ? experiments_->probeJson()
                                                               : experiments_->probeCsv();
    if (!write_file(path, text.toUtf8(), &error))
      showError(tr("Export probe results"), tr("Could not write %1: %2").arg(path, error));
  });
  file->addAction(tr("Export sweep grid (CSV)..."), this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export sweep grid"), last_dir_,
                                                      tr("CSV (*.csv)"));
    if (path.isEmpty()) return;
    QString error;
    if (!write_file(path, experiments_->sweepGridCsv().toUtf8(), &error))
      showError(tr("Export sweep grid"), tr("Could not write %1: %2").arg(path, error));
  });
  file->addAction(tr("Export metrics as &JSON..."), this, [this] {
    const QString path =
        QFileDialog::getSaveFileName(this, tr("Export metrics"), last_dir_, tr("JSON (*.json)"));
    if (!path.isEmpty()) exportMetricsJson(path);
  });
  file_end_ = file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
}

QMenu* MainWindow::addTopMenu(const QString& title) { return menuBar()->addMenu(title); }

void MainWindow::addFileActions(const QList<QAction*>& actions) {
  file_menu_->insertActions(file_end_, actions);
}

void MainWindow::showStatus(const QString& text) { statusBar()->showMessage(text, 5000); }

LiveControls* MainWindow::liveControls() const { return controls_->live(); }

QWidget* MainWindow::lessonWidget(const QString& name) const {
  const QList<std::pair<QString, QWidget*>> widgets = {
      {QStringLiteral("heatmap"), heatmap_},         {QStringLiteral("balance"), balance_},
      {QStringLiteral("loss"), loss_},               {QStringLiteral("tokens"), tokens_},
      {QStringLiteral("controls"), controls_},       {QStringLiteral("live"), controls_->live()},
      {QStringLiteral("form"), controls_->form()},   {QStringLiteral("experiments"), experiments_},
      {QStringLiteral("compare"), compare_}};
  for (const auto& [n, widget] : widgets)
    if (n == name) return widget;
  return nullptr;
}

QStringList MainWindow::plotNames() const {
  return {QStringLiteral("heatmap"),      QStringLiteral("balance"), QStringLiteral("loss"),
          QStringLiteral("domains"),      QStringLiteral("compare"), QStringLiteral("similarity"),
          QStringLiteral("expert-norms"), QStringLiteral("probe"),   QStringLiteral("sweep"),
          QStringLiteral("sweep-curves"), QStringLiteral("sweep-grid")};
}

QCustomPlot* MainWindow::plotByName(const QString& which) const {
  if (which == QLatin1String("heatmap")) return heatmap_->plot();
  if (which == QLatin1String("balance")) return balance_->plot();
  if (which == QLatin1String("loss")) return loss_->plot();
  if (which == QLatin1String("domains")) return domains_->plot();
  if (which == QLatin1String("compare")) return compare_->lossView()->plot();
  if (which == QLatin1String("similarity")) return inspector_->similarityPlot();
  if (which == QLatin1String("expert-norms")) return inspector_->normsPlot();
  if (which == QLatin1String("probe")) return experiments_->probePlot();
  if (which == QLatin1String("sweep")) return experiments_->sweepPlot();
  if (which == QLatin1String("sweep-curves")) return experiments_->curvesPlot();
  if (which == QLatin1String("sweep-grid")) return experiments_->gridPlot();
  return nullptr;
}

bool MainWindow::exportMetricsCsv(const QString& path) {
  QString error;
  if (!write_file(path, metricsCsv(session_->history()), &error)) {
    showError(tr("Export metrics"), tr("Could not write %1: %2").arg(path, error));
    return false;
  }
  return true;
}

bool MainWindow::exportMetricsJson(const QString& path) {
  QString error;
  if (!write_file(path, metricsJson(session_->history(), session_->state()), &error)) {
    showError(tr("Export metrics"), tr("Could not write %1: %2").arg(path, error));
    return false;
  }
  return true;
}

bool MainWindow::exportPlot(const QString& which, const QString& path) {
  QCustomPlot* plot = plotByName(which);
  if (!plot) {
    showError(tr("Export plot"), tr("No plot called '%1'").arg(which));
    return false;
  }
  const QString error = unipool::studio::exportPlot(plot, path);
  if (!error.isEmpty()) {
    showError(tr("Export plot"), error);
    return false;
  }
  return true;
}

void MainWindow::rememberRecent(const QString& path) {
  const QString abs = QFileInfo(path).absoluteFilePath();
  recent_.removeAll(abs);
  recent_.prepend(abs);
  while (recent_.size() > kMaxRecent) recent_.removeLast();
  QSettings().setValue(QStringLiteral("recentFiles"), recent_);
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  if (!recent_menu_) return;
  recent_menu_->clear();
  for (const QString& path : recent_)
    recent_menu_->addAction(path, this, [this, path] { openCheckpoint(path); });
  recent_menu_->setEnabled(!recent_.isEmpty());
}

}  // namespace unipool::studio
