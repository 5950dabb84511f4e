// Opening a MoE checkpoint (ours or downloaded, one file or a sharded folder) and measuring
// its cross-layer expert redundancy, off the window's thread, with progress and Cancel. The
// files are memory-mapped and only sampled rows are read (unipool/redundancy.h), so a 90 GB
// checkpoint opens with little resident memory; they are closed when the report is made.
#pragma once

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <atomic>
#include <memory>

#include "unipool/redundancy.h"

namespace unipool::studio {

// The error of a report whose analysis was cancelled (and RedundancyView::failed's reason).
inline const QString kCancelled = QStringLiteral("cancelled");

struct MoeReport {
  QString path;
  QString error;  // empty when the checkpoint was read; kCancelled after Cancel
  MoeArchitecture architecture;
  PoolView pool;
  RedundancyReport redundancy;
  int files = 0;
  uint64_t bytes = 0;
  double seconds_to_layout = 0;  // headers parsed and layout recognised
};

// One analysis at a time: start() while one runs cancels it first.
class MoeAnalysis : public QObject {
  Q_OBJECT
 public:
  explicit MoeAnalysis(QObject* parent = nullptr);
  ~MoeAnalysis() override;
  // `rows`: rows sampled per expert matrix (0: every row). Returns at once.
  void start(const QString& path, int rows = 32);
  void cancel();
  bool running() const { return watcher_.isRunning(); }

 Q_SIGNALS:
  void progress(double fraction, const QString& what);
  void finished(std::shared_ptr<const unipool::studio::MoeReport> report);

 private:
  QFutureWatcher<std::shared_ptr<const MoeReport>> watcher_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  QList<QFuture<std::shared_ptr<const MoeReport>>> superseded_;  // cancelled, maybe running
};

}  // namespace unipool::studio
