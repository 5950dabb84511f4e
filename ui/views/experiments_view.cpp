#include "views/experiments_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include "session/experiment_jobs.h"
#include "session/run_session.h"
#include "views/experiments_plots.h"
#include "views/form_widgets.h"
#include "views/plot_style.h"

namespace unipool::studio {

ExperimentsView::ExperimentsView(RunSession* session, QWidget* parent)
    : QWidget(parent), session_(session), jobs_(new ExperimentJobs(this)) {
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1000);
  status_ = new QLabel(tr("Run a probe or a sweep: they work in the background."), this);
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setEnabled(false);
  auto* bar = new QHBoxLayout;
  bar->addWidget(progress_, 1);
  bar->addWidget(status_, 2);
  bar->addWidget(cancel_);
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->addWidget(buildProbeBox());
  split->addWidget(buildSweepBox());
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(bar);
  layout->addWidget(split, 1);

  connect(cancel_, &QPushButton::clicked, this, &ExperimentsView::cancel);
  connect(jobs_, &ExperimentJobs::progress, this, [this](double f, const QString& text) {
    progress_->setValue(int(1000 * f));
    status_->setText(text);
  });
  connect(jobs_, &ExperimentJobs::probeDone, this, &ExperimentsView::showProbe);
  connect(jobs_, &ExperimentJobs::sweepState, this, &ExperimentsView::showSweep);
  connect(jobs_, &ExperimentJobs::sweepStep, this, [this](int run, qint64 step, double ce) {
    if (run < 0 || run >= int(sweep_.runs.size())) return;
    // Live curves: one point per 10 steps, as the saved curves have.
    auto& curve = sweep_.runs[size_t(run)].curve;
    if (step % 10 == 0) {
      curve.push_back({step, ce});
      drawCurves();
    }
  });
  connect(jobs_, &ExperimentJobs::sweepDone, this, [this](const SweepState& s, bool cancelled) {
    showSweep(s);
    cancel_->setEnabled(false);
    status_->setText(cancelled ? tr("Sweep cancelled: finished runs are kept; Start resumes it.")
                               : tr("Sweep finished: %1").arg(QString::fromStdString(s.dir)));
  });
  connect(jobs_, &ExperimentJobs::failed, this, [this](const QString& message) {
    cancel_->setEnabled(false);
    status_->setText(tr("Stopped: %1").arg(message));
    Q_EMIT failed(tr("Experiment"), message);
  });
  connect(session_, &RunSession::copySaved, this, [this](const QString& path) {
    if (path != pending_copy_) return;  // another copy (a lesson's snapshot) is not the probe's
    pending_copy_.clear();
    QStringList paths = {path};
    QStringList labels = {tr("current run")};
    if (!pending_compare_.isEmpty()) {
      paths << pending_compare_;
      labels << pending_compare_;
    }
    jobs_->startProbe(paths, labels, probe_seeds_->value(), probe_windows_->value());
  });
}

QWidget* ExperimentsView::buildProbeBox() {
  auto* box = new QGroupBox(tr("Does routing matter? The random-routing probe"), this);
  auto* form = new QFormLayout;
  probe_seeds_ = spin(box, 1, 20, 3, tr("Random draws per condition (mean and spread)"));
  probe_windows_ = spin(box, 1, 100000, 64, tr("Windows of validation text per evaluation"));
  probe_compare_ = new QLineEdit(box);
  probe_compare_->setPlaceholderText(tr("optional: a second model to probe beside it"));
  auto* run = new QPushButton(tr("Probe the current run"), box);
  auto* open = new QPushButton(tr("Probe a checkpoint..."), box);
  form->addRow(tr("Seeds"), probe_seeds_);
  form->addRow(tr("Windows"), probe_windows_);
  form->addRow(tr("Beside"), probe_compare_);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run);
  buttons->addWidget(open);
  form->addRow(buttons);
  probe_table_ = new QTableWidget(0, 1, box);
  probe_table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  probe_table_->verticalHeader()->setVisible(false);
  probe_plot_ = new QCustomPlot(box);
  applyPlotStyle(probe_plot_);
  probe_plot_->setMinimumHeight(220);
  auto* layout = new QVBoxLayout(box);
  layout->addLayout(form);
  layout->addWidget(probe_plot_, 2);
  layout->addWidget(probe_table_, 1);
  connect(run, &QPushButton::clicked, this,
          [this] { probeCurrentRun(probe_compare_->text().trimmed()); });
  connect(open, &QPushButton::clicked, this, [this] {
    const QStringList paths = QFileDialog::getOpenFileNames(
        this, tr("Checkpoints to probe"), QString(), tr("Checkpoints (*.safetensors)"));
    if (!paths.isEmpty()) probeCheckpoints(paths.mid(0, 2));
  });
  return box;
}

QWidget* ExperimentsView::buildSweepBox() {
  auto* box = new QGroupBox(tr("How small can the pool be? The pool-size sweep"), this);
  auto* form = new QFormLayout;
  sweep_dir_ = new QLineEdit(QDir::home().filePath(QStringLiteral("unipool-sweep")), box);
  pool_sizes_ = new QLineEdit(QStringLiteral("12,20,24,32,48"), box);
  pool_sizes_->setToolTip(
      tr("Experts in the shared pool; 48 is the vanilla budget of 6 layers x 8"));
  aux_coefs_ = new QLineEdit(box);
  aux_coefs_->setPlaceholderText(tr("the preset's (e.g. 0,0.001,0.01,0.1 for a grid)"));
  aux_coefs_->setToolTip(tr("Each pool size at each aux coefficient: the zero-gate regime "
                            "(SPEC 9) over the grid"));
  sweep_seeds_ = spin(box, 1, 3, 2);
  sweep_steps_ = spin(box, 1, 1000000, 1000);
  parallel_ = spin(box, 1, 16, 1, tr("Runs trained at once"));
  vanilla_ = new QCheckBox(tr("vanilla baseline"), box);
  vanilla_->setChecked(true);
  lock_ = new QCheckBox(tr("UniPool-lock"), box);
  auto* start = new QPushButton(tr("Start / resume"), box);
  auto* open = new QPushButton(tr("Open folder..."), box);
  form->addRow(tr("Folder"), sweep_dir_);
  form->addRow(tr("Pool sizes"), pool_sizes_);
  form->addRow(tr("Aux coefs"), aux_coefs_);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel(tr("seeds"), box));
  row->addWidget(sweep_seeds_);
  row->addWidget(new QLabel(tr("steps"), box));
  row->addWidget(sweep_steps_);
  row->addWidget(new QLabel(tr("at once"), box));
  row->addWidget(parallel_);
  form->addRow(tr("Runs"), row);
  auto* with = new QHBoxLayout;
  with->addWidget(vanilla_);
  with->addWidget(lock_);
  form->addRow(tr("Also"), with);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(start);
  buttons->addWidget(open);
  form->addRow(buttons);
  curves_plot_ = new QCustomPlot(box);
  sweep_plot_ = new QCustomPlot(box);
  grid_plot_ = new QCustomPlot(box);
  for (QCustomPlot* p : {curves_plot_, sweep_plot_, grid_plot_}) {
    applyPlotStyle(p);
    p->setMinimumHeight(200);
  }
  grid_value_ = new QComboBox(box);
  grid_value_->addItems({tr("zero-gate tokens (%)"), tr("validation CE")});
  grid_value_->setToolTip(tr("A grid sweep (unipool sweep --aux-coefs): pool size x aux "
                             "coefficient"));
  auto* layout = new QVBoxLayout(box);
  layout->addLayout(form);
  layout->addWidget(curves_plot_, 1);
  layout->addWidget(sweep_plot_, 1);
  layout->addWidget(grid_value_);
  layout->addWidget(grid_plot_, 1);
  grid_value_->hide();
  grid_plot_->hide();  // shown for a grid sweep
  connect(grid_value_, &QComboBox::currentIndexChanged, this,
          [this](int i) { drawSweepGrid(grid_plot_, sweep_, i == 0); });
  connect(start, &QPushButton::clicked, this, [this] { startSweep(sweep_dir_->text().trimmed()); });
  connect(open, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Sweep folder"));
    if (!dir.isEmpty()) openSweep(dir);
  });
  return box;
}

SweepSpec ExperimentsView::formSpec() const {
  SweepSpec s;
  for (const QString& part : pool_sizes_->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
    bool ok = false;
    const int v = part.trimmed().toInt(&ok);
    if (ok && v > 0) s.pool_sizes.push_back(v);
  }
  for (const QString& part : aux_coefs_->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
    bool ok = false;
    const double v = part.trimmed().toDouble(&ok);
    if (ok && v >= 0) s.aux_coefs.push_back(v);
  }
  s.seeds.clear();
  for (int i = 1; i <= sweep_seeds_->value(); ++i) s.seeds.push_back(uint64_t(i));
  s.steps = sweep_steps_->value();
  s.vanilla = vanilla_->isChecked();
  s.lock = lock_->isChecked();
  return s;
}

void ExperimentsView::probeCurrentRun(const QString& compare_with) {
  if (!session_->state().valid) {
    Q_EMIT failed(tr("Probe"), tr("No run: create one or open a checkpoint first."));
    return;
  }
  pending_compare_ = compare_with;
  cancel_->setEnabled(true);
  status_->setText(tr("Saving a copy of the current run..."));
  pending_copy_ = QDir::temp().filePath(
      QStringLiteral("unipool-probe-%1.safetensors").arg(QCoreApplication::applicationPid()));
  session_->post(cmd::SaveCopy{pending_copy_});
}

void ExperimentsView::probeCheckpoints(const QStringList& paths) {
  cancel_->setEnabled(true);
  QStringList labels;  // "mg24-s1/model": the folder says which run it is
  for (const QString& p : paths)
    labels << QFileInfo(p).dir().dirName() + QLatin1Char('/') + QFileInfo(p).completeBaseName();
  jobs_->startProbe(paths, labels, probe_seeds_->value(), probe_windows_->value());
}

void ExperimentsView::probeDownloaded(std::shared_ptr<const HfModel> model,
                                      std::vector<int32_t> ids, const QString& label, int seq) {
  cancel_->setEnabled(true);
  status_->setText(tr("Probing %1...").arg(label));
  jobs_->startDownloadedProbe(std::move(model), std::move(ids), label, seq,
                              probe_seeds_->value(), probe_windows_->value());
}

void ExperimentsView::startSweep(const QString& dir) {
  if (dir.isEmpty()) {
    Q_EMIT failed(tr("Sweep"), tr("Choose a folder for the sweep."));
    return;
  }
  cancel_->setEnabled(true);
  jobs_->startSweep(dir, formSpec(), parallel_->value());
}

bool ExperimentsView::openSweep(const QString& dir) {
  try {
    showSweep(load_sweep(dir.toStdString()));
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("Open sweep"), QString::fromUtf8(e.what()));
    return false;
  }
  sweep_dir_->setText(dir);
  status_->setText(tr("Sweep %1").arg(dir));
  return true;
}

void ExperimentsView::cancel() {
  jobs_->cancel();
  status_->setText(tr("Cancelling after the current step..."));
}

void ExperimentsView::showProbe(const std::vector<ProbeResult>& results) {
  probes_ = results;
  cancel_->setEnabled(false);
  progress_->setValue(1000);
  status_->setText(tr("Probe finished"));
  fillProbeTable(probe_table_, results);
  drawProbe(probe_plot_, results);
}

void ExperimentsView::showSweep(const SweepState& state) {
  sweep_ = state;
  drawCurves();
  drawSweep(sweep_plot_, state);
  const bool grid = !state.spec.aux_coefs.empty();
  grid_value_->setVisible(grid);
  grid_plot_->setVisible(grid);
  if (grid) drawSweepGrid(grid_plot_, state, grid_value_->currentIndex() == 0);
}

QString ExperimentsView::sweepGridCsv() const {
  return QString::fromStdString(sweep_grid_csv(sweep_));
}

void ExperimentsView::drawCurves() { drawSweepCurves(curves_plot_, sweep_); }

QString ExperimentsView::probeJson() const {
  QStringList parts;
  for (const ProbeResult& r : probes_) parts << QString::fromStdString(to_json(r));
  return QStringLiteral("[") + parts.join(QLatin1Char(',')) + QStringLiteral("]");
}

QString ExperimentsView::probeCsv() const {
  QString out;
  for (size_t i = 0; i < probes_.size(); ++i) {
    QString csv = QString::fromStdString(probe_csv(probes_[i]));
    if (i > 0) csv = csv.section(QLatin1Char('\n'), 1);  // one header
    out += csv;
  }
  return out;
}

}  // namespace unipool::studio
