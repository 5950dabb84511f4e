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
#include <vector>

#include "unipool/redundancy.h"

namespace unipool::studio {

// The (n x n) similarity of n experts as the map draws it: above kMaxMapCells experts a
// cell is a block x block square showing its most similar pair (an expert with itself left
// out: averaging would hide exactly the redundant pairs the map is for); NaN where a block
// has no finite pair. Made on the worker, so the window's thread only fills the cells.
struct SimilarityMap {
  static constexpr int kMaxMapCells = 1024;  // per axis
  int block = 1, size = 0;                   // cells per axis: ceil(n / block)
  std::vector<double> cells;                 // (size, size), row-major
};
SimilarityMap similarity_map(const RedundancyReport& r);

// The error of a report whose analysis was cancelled (and RedundancyView::failed's reason).
inline const QString kCancelled = QStringLiteral("cancelled");

struct MoeReport {
  QString path;
  QString error;  // empty when the checkpoint was read; kCancelled after Cancel
  MoeArchitecture architecture;
  PoolView pool;
  RedundancyReport redundancy;
  SimilarityMap map;  // of `redundancy`
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
