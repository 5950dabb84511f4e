#include "session/run_log_follower.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace unipool::studio {

namespace {

template <class T>
std::vector<T> numbers(const QJsonValue& v) {
  std::vector<T> out;
  for (const QJsonValue& x : v.toArray()) out.push_back(static_cast<T>(x.toDouble()));
  return out;
}

// The `routing` object `unipool train --log-routing-every` writes (SPEC section 5's raw sums).
RoutingCounts routingFromJson(const QJsonObject& o) {
  RoutingCounts c(o["n_layers"].toInt(), o["layers_per_group"].toInt(),
                  o["experts_per_group"].toInt(), o["top_k"].toInt(), o["n_domains"].toInt());
  c.tokens = int64_t(o["tokens"].toDouble());
  const auto counts = numbers<int64_t>(o["counts"]);
  if (counts.size() != c.counts.size()) return RoutingCounts{};
  c.counts = counts;
  c.gate_sum = numbers<double>(o["gate_sum"]);
  c.entropy_sum = numbers<double>(o["entropy_sum"]);
  c.reuse_sum = o["reuse_sum"].toDouble();
  c.zero_gate = numbers<int64_t>(o["zero_gate"]);
  c.domain_counts = numbers<int64_t>(o["domain_counts"]);
  c.domain_tokens = numbers<int64_t>(o["domain_tokens"]);
  if (c.gate_sum.size() != c.counts.size()) c.gate_sum.assign(c.counts.size(), 0.0);
  if (c.entropy_sum.size() != size_t(c.n_layers)) c.entropy_sum.assign(size_t(c.n_layers), 0.0);
  if (c.domain_counts.size() != size_t(c.n_domains) * c.counts.size()) {
    c.n_domains = 0;
    c.domain_counts.clear();
    c.domain_tokens.clear();
  }
  return c;
}

std::string compact(const QJsonValue& v) {
  return QJsonDocument(v.toObject()).toJson(QJsonDocument::Compact).toStdString();
}

}  // namespace

RunLogFollower::RunLogFollower(QObject* parent) : QObject(parent) {
  connect(&timer_, &QTimer::timeout, this, &RunLogFollower::poll);
}

bool RunLogFollower::isRunLog(const QString& path, QString* error) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    *error = tr("Cannot read %1: %2").arg(path, file.errorString());
    return false;
  }
  const QByteArray first = file.readLine(1 << 20);
  const QJsonObject header = QJsonDocument::fromJson(first).object()["run"].toObject();
  if (header.isEmpty() || !header["config"].isObject()) {
    *error = tr("%1 is not a UniPool training log: its first line is not the run header that "
                "`unipool train --log` writes.")
                 .arg(path);
    return false;
  }
  return true;
}

bool RunLogFollower::follow(const QString& path, QString* error, int interval_ms) {
  if (!isRunLog(path, error)) return false;
  stop();
  path_ = path;
  offset_ = 0;
  partial_.clear();
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
  if (file.size() < offset_) {  // truncated or a new run in the same file: start over
    offset_ = 0;
    partial_.clear();
    Q_EMIT started();
  }
  if (!file.seek(offset_)) return;
  const QByteArray fresh = file.read(64 << 20);  // a huge backlog arrives over a few polls
  offset_ += fresh.size();
  partial_ += fresh;
  const int end = partial_.lastIndexOf('\n');
  if (end < 0) return;
  const QByteArray complete = partial_.left(end);
  partial_ = partial_.mid(end + 1);
  for (const QByteArray& line : complete.split('\n'))
    if (!line.trimmed().isEmpty()) handleLine(line);
  if (!pending_.steps.empty()) {
    Q_EMIT trainingUpdate(pending_);
    pending_ = {};
  }
}

bool RunLogFollower::handleLine(const QByteArray& line) {
  const QJsonObject o = QJsonDocument::fromJson(line).object();
  if (o.contains("run")) {
    const QJsonObject run = o["run"].toObject();
    try {
      state_ = {};
      state_.valid = true;
      state_.config = config_from_json(compact(run["config"]));
      state_.options = train_options_from_json(compact(run["train"]));
      state_.step = int64_t(run["from_step"].toDouble());
      state_.random_layers.assign(size_t(state_.config.n_layers), false);
      state_.data_path = run["data"].toString().toStdString();
      state_.source = path_;
      state_.can_train = false;  // read-only: the run trains elsewhere
      state_.watching = true;
      state_.compute = tr("watching %1 (%2 rank(s), %3)")
                           .arg(QFileInfo(path_).fileName())
                           .arg(run["world_size"].toInt(1))
                           .arg(run["compute"].toString());
    } catch (const std::exception& e) {
      Q_EMIT problem(
          tr("%1: the run header is not valid: %2").arg(path_, QString::fromUtf8(e.what())));
      return false;
    }
    Q_EMIT stateChanged(state_);
    return true;
  }
  if (o.contains("saved")) {
    // Relative to the log's folder when the run was started elsewhere with a relative --out.
    const QString saved = o["saved"].toString();
    const QString path = QFileInfo::exists(saved)
                             ? saved
                             : QFileInfo(path_).dir().filePath(QFileInfo(saved).fileName());
    Q_EMIT checkpointSaved(path);
    return true;
  }
  if (!o.contains("step") || !state_.valid) {
    if (!warned_) Q_EMIT problem(tr("%1: skipped a line that is not a step record").arg(path_));
    warned_ = true;
    return false;
  }
  StepPoint p;
  p.step = int64_t(o["step"].toDouble());
  p.loss = o["loss"].toDouble();
  p.ce = o["ce"].toDouble();
  p.aux = o["aux"].toDouble();
  p.lr = o["lr"].toDouble();
  p.tokens_per_s = o["tokens_per_s"].toDouble();
  p.applied = o["applied"].toBool(true);
  pending_.steps.push_back(p);
  pending_.step = p.step;
  pending_.tokens_per_s = p.tokens_per_s;
  if (o["routing"].isObject()) {
    // The step's counts stand for the steps since the last record (a sample of them).
    pending_.routing = routingFromJson(o["routing"].toObject());
    Q_EMIT trainingUpdate(pending_);
    pending_ = {};
  }
  if (o.contains("valid_loss")) {
    ValidationPoint v;
    v.step = p.step;
    v.ce = o["valid_loss"].toDouble();
    Q_EMIT validated(v);
  }
  return true;
}

}  // namespace unipool::studio
