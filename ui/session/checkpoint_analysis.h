// Reading and analysing a checkpoint for the Checkpoint tab, off the window's thread: config,
// parameter counts, expert norms and similarity, and the routing of built-in validation text.
// The analysis opens an Engine of its own (threads = 0: it must not change the training
// thread's BLAS setting); the views only ever see the finished CheckpointReport.
#pragma once

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <vector>

#include "unipool/engine.h"

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

// The report of a model already open (the worker's, right after File > Open: the file is read
// once). `has_train_state`: whether it was opened with its training state.
CheckpointReport analyseEngine(const Engine& engine, const QString& path, bool has_train_state);
// Opens and analyses a checkpoint (blocking; CheckpointAnalysis runs it on a pool thread): a
// watched run's checkpoints, which no worker here holds.
CheckpointReport analyseCheckpoint(const QString& path);

// One analysis at a time: a newer start() supersedes one still running, whose result is then
// dropped, so only the newest file is reported and the caller never waits.
class CheckpointAnalysis : public QObject {
  Q_OBJECT
 public:
  explicit CheckpointAnalysis(QObject* parent = nullptr);
  void start(const QString& path);  // returns at once; finished() follows

 Q_SIGNALS:
  void finished(const unipool::studio::CheckpointReport& report);

 private:
  QFutureWatcher<CheckpointReport> watcher_;
};

}  // namespace unipool::studio

Q_DECLARE_METATYPE(unipool::studio::CheckpointReport)
