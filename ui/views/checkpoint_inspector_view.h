// View 6: what a checkpoint holds, without training it. Config, parameter counts, the expert
// budget against the equivalent vanilla MoE, the tensor table, per-expert weight norms, the
// expert-similarity matrix and the routing of built-in validation text. The file is read on a
// background thread; a file that cannot be read reports why through failed().
#pragma once

#include <QFutureWatcher>
#include <QWidget>

#include "unipool/engine.h"

class QCustomPlot;
class QLabel;
class QTableWidget;
class QTextBrowser;

namespace unipool::studio {

struct CheckpointReport {
  QString path;
  QString error;  // empty when the file was read
  CheckpointInfo info;
  ParamCounts params;
  std::vector<double> expert_norms;       // (N)
  std::vector<double> expert_similarity;  // (N, N)
  EvalResult validation;                  // on built-in text
};

// Reads and analyses a checkpoint (blocking; the view calls it on a worker thread).
CheckpointReport analyseCheckpoint(const QString& path);

class CheckpointInspectorView : public QWidget {
  Q_OBJECT
 public:
  explicit CheckpointInspectorView(QWidget* parent = nullptr);
  void open(const QString& path);  // returns at once; reportReady() or failed() follows
  const CheckpointReport& report() const { return report_; }
  QCustomPlot* normsPlot() const { return norms_; }
  QCustomPlot* similarityPlot() const { return similarity_; }
  QCustomPlot* routingPlot() const { return routing_; }
  QTableWidget* tensorTable() const { return tensors_; }
  QString summaryText() const;

 Q_SIGNALS:
  void reportReady(const QString& path);
  void failed(const QString& path, const QString& reason);

 private:
  void show(const CheckpointReport& report);

  QLabel* status_;
  QTextBrowser* summary_;
  QTableWidget* tensors_;
  QCustomPlot *norms_, *similarity_, *routing_;
  QFutureWatcher<CheckpointReport> watcher_;
  CheckpointReport report_;
};

}  // namespace unipool::studio
