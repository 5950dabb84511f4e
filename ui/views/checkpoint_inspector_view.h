// View 6: what a checkpoint holds, without training it. Config, parameter counts, the expert
// budget against the equivalent vanilla MoE, the tensor table, per-expert weight norms, the
// expert-similarity matrix and the routing of built-in validation text. The session layer's
// CheckpointAnalysis reads the file on a background thread; a file that cannot be read reports
// why through failed().
#pragma once

#include <QWidget>

#include "session/checkpoint_analysis.h"

class QCustomPlot;
class QLabel;
class QPushButton;
class QTableWidget;
class QTextBrowser;

namespace unipool::studio {

class CheckpointInspectorView : public QWidget {
  Q_OBJECT
 public:
  explicit CheckpointInspectorView(QWidget* parent = nullptr);
  // A file no run here holds (a watched run's checkpoint): read and analysed off the window's
  // thread; returns at once, reportReady() or failed() follows.
  void open(const QString& path);
  // "Reading PATH ...": the run's worker is opening it and its report will follow.
  void expect(const QString& path);
  // A report made elsewhere (the worker's, from the model it just opened).
  void showReport(const CheckpointReport& report);
  const CheckpointReport& report() const { return report_; }
  QCustomPlot* normsPlot() const { return norms_; }
  QCustomPlot* similarityPlot() const { return similarity_; }
  QCustomPlot* routingPlot() const { return routing_; }
  QTableWidget* tensorTable() const { return tensors_; }
  QPushButton* redundancyButton() const { return redundancy_; }
  QString summaryText() const;

 Q_SIGNALS:
  void reportReady(const QString& path);
  void failed(const QString& path, const QString& reason);
  // "Cross-layer redundancy": the shown file in the Redundancy tab (its experts compared).
  void redundancyRequested(const QString& path);

 private:

  QLabel* status_;
  QPushButton* redundancy_;
  QTextBrowser* summary_;
  QTableWidget* tensors_;
  QCustomPlot *norms_, *similarity_, *routing_;
  CheckpointAnalysis analysis_;
  CheckpointReport report_;
};

}  // namespace unipool::studio
