#include "session/moe_analysis.h"

#include <QElapsedTimer>
#include <QMetaObject>
#include <QPointer>
#include <QtConcurrent/QtConcurrentRun>

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
          [owner, done, text] {
            if (owner) Q_EMIT owner->progress(done, text);
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
    r->json = QString::fromStdString(redundancy_json(*checkpoint, &r->redundancy));
  } catch (const Cancelled&) {
    r->error = QStringLiteral("cancelled");
  } catch (const std::exception& e) {
    r->error = QString::fromUtf8(e.what());
  }
  return r;
}

}  // namespace

MoeAnalysis::MoeAnalysis(QObject* parent) : QObject(parent) {
  connect(&watcher_, &QFutureWatcher<std::shared_ptr<const MoeReport>>::finished, this,
          [this] { Q_EMIT finished(watcher_.result()); });
}

MoeAnalysis::~MoeAnalysis() {
  cancel();
  watcher_.waitForFinished();  // the worker uses this object's progress signal
}

void MoeAnalysis::start(const QString& path, int rows) {
  cancel();
  watcher_.waitForFinished();  // a cancelled analysis stops at its next row
  cancel_ = std::make_shared<std::atomic<bool>>(false);
  watcher_.setFuture(QtConcurrent::run(analyse, path, rows, cancel_, QPointer<MoeAnalysis>(this)));
}

void MoeAnalysis::cancel() {
  if (cancel_) cancel_->store(true);
}

}  // namespace unipool::studio
