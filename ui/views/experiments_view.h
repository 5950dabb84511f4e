// View 7: Experiments. The random-routing probe (does routing in deep layers matter?) on the
// current run, a checkpoint, or two side by side; and the pool-size sweep (how small can the
// shared pool be?) in a folder, with progress, time left, cancel and resume, small loss curves
// while it runs and validation loss and speed against the expert budget at the end. The work
// runs in the session layer's ExperimentJobs; a sweep folder reopens with its plots.
#pragma once

#include <QWidget>
#include <vector>

#include <memory>

#include "unipool/experiments.h"
#include "unipool/hf_model.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace unipool::studio {

class ExperimentJobs;
class RunSession;

class ExperimentsView : public QWidget {
  Q_OBJECT
 public:
  explicit ExperimentsView(RunSession* session, QWidget* parent = nullptr);

  // Probe the current run (saved to a temporary copy first) and optionally a checkpoint.
  void probeCurrentRun(const QString& compare_with = {});
  void probeCheckpoints(const QStringList& paths);
  // The probe on a downloaded model over token ids (windows of `seq`), the form's seeds and
  // windows.
  void probeDownloaded(std::shared_ptr<const HfModel> model, std::vector<int32_t> ids,
                       const QString& label, int seq);
  // Start or resume a sweep in `dir` with the form's spec; open a sweep folder to view it.
  void startSweep(const QString& dir);
  bool openSweep(const QString& dir);
  void cancel();

  ExperimentJobs* jobs() const { return jobs_; }
  QCustomPlot* probePlot() const { return probe_plot_; }
  QCustomPlot* sweepPlot() const { return sweep_plot_; }
  QCustomPlot* curvesPlot() const { return curves_plot_; }
  QCustomPlot* gridPlot() const { return grid_plot_; }  // a --aux-coefs grid's heatmap
  QString sweepGridCsv() const;  // every UniPool run of the grid, for File > Export
  QTableWidget* probeTable() const { return probe_table_; }
  const std::vector<ProbeResult>& probeResults() const { return probes_; }
  const SweepState& sweep() const { return sweep_; }
  SweepSpec formSpec() const;
  QString probeJson() const;  // the last probe's results, for File > Export
  QString probeCsv() const;

 Q_SIGNALS:
  void failed(const QString& what, const QString& message);

 private:
  QWidget* buildProbeBox();
  QWidget* buildSweepBox();
  void showProbe(const std::vector<ProbeResult>& results);
  void showSweep(const SweepState& state);
  void drawCurves();

  RunSession* session_;
  ExperimentJobs* jobs_;
  QProgressBar* progress_;
  QLabel* status_;
  QPushButton* cancel_;
  QSpinBox *probe_seeds_, *probe_windows_;
  QLineEdit* probe_compare_;
  QTableWidget* probe_table_;
  QCustomPlot *probe_plot_, *sweep_plot_, *curves_plot_, *grid_plot_;
  QComboBox* grid_value_;  // zero-gate share or validation CE
  QLineEdit *sweep_dir_, *pool_sizes_, *aux_coefs_;
  QSpinBox *sweep_seeds_, *sweep_steps_, *parallel_;
  QCheckBox *vanilla_, *lock_;
  std::vector<ProbeResult> probes_;
  SweepState sweep_;
  QString pending_copy_;     // the copy of the current run the probe waits for
  QString pending_compare_;  // a checkpoint to probe beside the current run's copy
};

}  // namespace unipool::studio
