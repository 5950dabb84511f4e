#include "session/moe_analysis.h"

#include <QElapsedTimer>
#include <QMetaObject>
#include <QPointer>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <cmath>

namespace unipool::studio {

namespace {

std::shared_ptr<const MoeReport> analyse(const QString& path, int rows,
                                         std::shared_ptr<std::atomic<bool>> cancel,
                                         QPointer<MoeAnalysis> owner) {
  auto r = std::make_shared<MoeReport>();
  r->path = path;
  int shown = -1;
  // Progress crosses to the window's thread queued, at most once per percent.
  const ProgressFn progress = [&](double done, const std::string& what) {
    const int percent = int(done * 100);
    if (percent != shown && owner) {
      shown = percent;
      const QString text = QString::fromStdString(what);
      QMetaObject::invokeMethod(
          owner,
          [owner, cancel, done, text] {
            // A superseded (cancelled) analysis may still be finishing: it reports nothing.
            if (owner && !cancel->load()) Q_EMIT owner->progress(done, text);
          },
          Qt::QueuedConnection);
    }
    return !cancel->load();
  };
  try {
    QElapsedTimer clock;
    clock.start();
    const auto checkpoint = MoeCheckpoint::open(path.toStdString(), progress);
    r->seconds_to_layout = double(clock.nsecsElapsed()) / 1e9;
    r->architecture = checkpoint->architecture();
    r->pool = pool_view(r->architecture);
    r->files = int(checkpoint->files().size());
    r->bytes = checkpoint->total_bytes();
    RedundancyOptions o;
    o.rows = rows;
    r->redundancy = analyse_redundancy(*checkpoint, o, progress);
    r->map = similarity_map(r->redundancy);
  } catch (const Cancelled&) {
    r->error = kCancelled;
  } catch (const std::exception& e) {
    r->error = QString::fromUtf8(e.what());
  }
  return r;
}

}  // namespace

SimilarityMap similarity_map(const RedundancyReport& r) {
  SimilarityMap s;
  const int n = int(r.banks.size()) * r.experts;
  s.block = std::max(1, (n + SimilarityMap::kMaxMapCells - 1) / SimilarityMap::kMaxMapCells);
  s.size = (n + s.block - 1) / s.block;
  s.cells.assign(size_t(s.size) * size_t(s.size), -2.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const double v = r.similarity[size_t(i) * size_t(n) + size_t(j)];
      if ((s.block > 1 && i == j) || !std::isfinite(v)) continue;
      double& cell = s.cells[size_t(i / s.block) * size_t(s.size) + size_t(j / s.block)];
      cell = std::max(cell, v);
    }
  for (double& cell : s.cells)
    if (cell < -1.5) cell = std::nan("");
  return s;
}

MoeAnalysis::MoeAnalysis(QObject* parent) : QObject(parent) {
  connect(&watcher_, &QFutureWatcher<std::shared_ptr<const MoeReport>>::finished, this,
          [this] { Q_EMIT finished(watcher_.result()); });
}

MoeAnalysis::~MoeAnalysis() {
  cancel();
  // The workers post to this object: they must end before it does.
  watcher_.waitForFinished();
  for (auto& f : superseded_) f.waitForFinished();
}

void MoeAnalysis::start(const QString& path, int rows) {
  // The window never waits here: a running analysis is cancelled and left to stop at its next
  // expert (its result is dropped: setFuture() stops listening to it).
  cancel();
  superseded_.removeIf([](const auto& f) { return f.isFinished(); });
  if (watcher_.isRunning()) superseded_.append(watcher_.future());
  cancel_ = std::make_shared<std::atomic<bool>>(false);
  watcher_.setFuture(QtConcurrent::run(analyse, path, rows, cancel_, QPointer<MoeAnalysis>(this)));
}

void MoeAnalysis::cancel() {
  if (cancel_) cancel_->store(true);
}

}  // namespace unipool::studio
