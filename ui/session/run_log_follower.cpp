#include "session/run_log_follower.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include "unipool/run_log.h"

namespace unipool::studio {

RunLogFollower::RunLogFollower(QObject* parent) : QObject(parent) {
  connect(&timer_, &QTimer::timeout, this, &RunLogFollower::poll);
}

bool RunLogFollower::isRunLog(const QString& path, QString* error) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    *error = tr("Cannot read %1: %2").arg(path, file.errorString());
    return false;
  }
  const QByteArray first = file.readLine(1 << 20).trimmed();
  try {
    if (run_log::parse_line(first.toStdString()).kind == run_log::Record::Kind::Header)
      return true;
  } catch (const run_log::Error&) {
  }
  *error = tr("%1 is not a UniPool training log: its first line is not the run header that "
              "`unipool train --log` writes.")
               .arg(path);
  return false;
}

bool RunLogFollower::follow(const QString& path, QString* error, int interval_ms) {
  if (!isRunLog(path, error)) return false;
  stop();
  path_ = path;
  offset_ = 0;
  partial_.clear();
  dropping_ = false;
  pending_ = {};
  state_ = {};
  warned_ = false;
  Q_EMIT started();
  poll();
  timer_.start(interval_ms);
  return true;
}

void RunLogFollower::stop() { timer_.stop(); }

void RunLogFollower::poll() {
  QFile file(path_);
  if (!file.open(QIODevice::ReadOnly)) return;  // being replaced: try again next time
  const qint64 size = file.size();
  if (size < offset_) {  // truncated or a new run in the same file: start over
    offset_ = 0;
    partial_.clear();
    dropping_ = false;
    Q_EMIT started();
  }
  if (!file.seek(offset_)) return;
  QByteArray fresh = file.read(kReadPerPoll);
  offset_ += fresh.size();
  if (dropping_) {  // the rest of an overlong line
    const int newline = fresh.indexOf('\n');
    fresh = newline < 0 ? QByteArray() : fresh.mid(newline + 1);
    dropping_ = newline < 0;
  }
  partial_ += fresh;
  const int end = partial_.lastIndexOf('\n');
  if (end >= 0) {
    const QByteArray complete = partial_.left(end);
    partial_ = partial_.mid(end + 1);
    for (const QByteArray& line : complete.split('\n')) {
      if (line.size() > kMaxLineBytes) {
        warnOnce(tr("%1: skipped a line of %2 MiB, longer than any run log record")
                     .arg(path_)
                     .arg(line.size() >> 20));
      } else if (!line.trimmed().isEmpty()) {
        handleLine(line);
      }
    }
  }
  if (partial_.size() > kMaxLineBytes) {
    warnOnce(tr("%1: skipped a line of over %2 MiB, longer than any run log record")
                 .arg(path_)
                 .arg(kMaxLineBytes >> 20));
    partial_.clear();
    partial_.squeeze();
    dropping_ = true;
  }
  if (!pending_.steps.empty()) {
    Q_EMIT trainingUpdate(pending_);
    pending_ = {};
  }
  if (offset_ < size) {  // a backlog: say how far, and read on as soon as the window is idle
    Q_EMIT catchingUp(offset_, size);
    if (timer_.isActive()) QTimer::singleShot(0, this, [this] {
        if (timer_.isActive()) poll();
      });
  }
}

void RunLogFollower::warnOnce(const QString& message) {
  if (!warned_) Q_EMIT problem(message);
  warned_ = true;
}

bool RunLogFollower::handleLine(const QByteArray& line) {
  run_log::Record r;
  try {
    r = run_log::parse_line(line.toStdString());
  } catch (const run_log::Error& e) {
    // A torn line (the writer was killed mid-line) or a foreign one: skipped, once said.
    warnOnce(tr("%1: skipped a line that is not a run log record (%2)").arg(path_, e.what()));
    return false;
  }
  if (r.kind == run_log::Record::Kind::Header) {
    const run_log::Header& h = r.header;
    state_ = {};
    state_.valid = true;
    state_.config = h.config;
    state_.options = h.train;
    state_.step = h.from_step;
    state_.random_layers.assign(size_t(state_.config.n_layers), false);
    state_.data_path = h.data;
    state_.source = path_;
    state_.can_train = false;  // read-only: the run trains elsewhere
    state_.watching = true;
    // Apart from the hosted runs' serials (the worker counts from 1): each header is a new run.
    state_.run_serial = (uint64_t(1) << 63) | ++headers_;
    state_.compute = tr("watching %1 (%2 rank(s), %3)")
                         .arg(QFileInfo(path_).fileName())
                         .arg(h.world_size)
                         .arg(QString::fromStdString(h.compute));
    Q_EMIT stateChanged(state_);
    return true;
  }
  if (r.kind == run_log::Record::Kind::Saved) {
    // Relative to the log's folder when the run was started elsewhere with a relative --out.
    const QString saved = QString::fromStdString(r.saved.path);
    const QString path = QFileInfo::exists(saved)
                             ? saved
                             : QFileInfo(path_).dir().filePath(QFileInfo(saved).fileName());
    Q_EMIT checkpointSaved(path);
    return true;
  }
  if (!state_.valid) {
    warnOnce(tr("%1: skipped a step record before the run header").arg(path_));
    return false;
  }
  const run_log::Step& s = r.step;
  StepPoint p;
  p.step = s.step;
  p.loss = s.loss;
  p.ce = s.ce;
  p.aux = s.aux;
  p.lr = s.lr;
  p.tokens_per_s = s.tokens_per_s;
  p.applied = s.applied;
  pending_.steps.push_back(p);
  pending_.step = p.step;
  pending_.tokens_per_s = p.tokens_per_s;
  if (!s.routing.counts.empty()) {
    // The step's counts stand for the steps since the last record (a sample of them).
    pending_.routing = s.routing;
    Q_EMIT trainingUpdate(pending_);
    pending_ = {};
  }
  if (s.has_valid_loss) {
    ValidationPoint v;
    v.step = p.step;
    v.ce = s.valid_loss;
    Q_EMIT validated(v);
  }
  return true;
}

}  // namespace unipool::studio
