#include "session/run_history.h"

namespace unipool::studio {

namespace {

bool same_shape(const RoutingCounts& a, const RoutingCounts& b) {
  return a.n_layers == b.n_layers && a.layers_per_group == b.layers_per_group &&
         a.experts_per_group == b.experts_per_group && a.top_k == b.top_k &&
         a.n_domains == b.n_domains;
}

// Adds b into a, or replaces a when the shapes differ (a pool resize starts a new window).
void accumulate(RoutingCounts& a, const RoutingCounts& b) {
  if (a.empty() || !same_shape(a, b)) {
    a = b;
  } else {
    a.add(b);
  }
}

size_t counts_bytes(const RoutingCounts& c) {
  return sizeof(RoutingCounts) + c.counts.capacity() * sizeof(int64_t) +
         c.gate_sum.capacity() * sizeof(double) + c.entropy_sum.capacity() * sizeof(double) +
         c.domain_counts.capacity() * sizeof(int64_t) +
         c.domain_tokens.capacity() * sizeof(int64_t);
}

}  // namespace

RunHistory::RunHistory(QObject* parent) : RunHistory(Limits{}, parent) {}

RunHistory::RunHistory(const Limits& limits, QObject* parent)
    : QObject(parent), limits_(limits), snapshot_every_(limits.snapshot_every) {}

void RunHistory::clear() {
  points_.clear();
  validation_.clear();
  changes_.clear();
  snapshots_.clear();
  open_ = {};
  cumulative_ = {};
  last_step_ = 0;
  snapshot_every_ = limits_.snapshot_every;
  Q_EMIT changed();
  Q_EMIT snapshotsChanged();
}

void RunHistory::addUpdate(const TrainingUpdate& update) {
  points_.insert(points_.end(), update.steps.begin(), update.steps.end());
  if (points_.size() > limits_.max_points) compactPoints();
  const int64_t n = int64_t(update.steps.size());
  if (!update.routing.empty()) addRouting(update.routing, update.step, n);
  last_step_ = update.step;
  Q_EMIT changed();
}

void RunHistory::addRouting(const RoutingCounts& counts, int64_t step, int64_t steps) {
  if (!open_.counts.empty() && !same_shape(open_.counts, counts)) closeWindow();
  accumulate(open_.counts, counts);
  accumulate(cumulative_, counts);
  open_.step = step;
  open_.steps += steps;
  if (open_.steps >= snapshot_every_) closeWindow();
}

void RunHistory::cutWindow() {
  if (open_.steps == 0) return;
  closeWindow();
  Q_EMIT snapshotsChanged();
}

void RunHistory::closeWindow() {
  if (open_.counts.empty()) return;
  snapshots_.push_back(std::move(open_));
  open_ = {};
  if (snapshots_.size() > limits_.max_snapshots) thinSnapshots();
  Q_EMIT snapshotsChanged();
}

RoutingCounts RunHistory::latestRouting() const {
  if (!open_.counts.empty()) return open_.counts;
  return snapshots_.empty() ? RoutingCounts{} : snapshots_.back().counts;
}

void RunHistory::addValidation(const ValidationPoint& point) {
  validation_.push_back(point);
  // Validation runs every ~50 steps: an hour is ~100 points; keep the routing of the last only.
  if (validation_.size() > 1) validation_[validation_.size() - 2].routing = {};
  if (validation_.size() > limits_.max_points) validation_.erase(validation_.begin());
  Q_EMIT changed();
}

void RunHistory::addChange(const ChangeEvent& event) {
  changes_.push_back(event);
  // Pool size and top-k change the routing's shape: the open window ends here.
  if (event.reshapesRouting()) {
    closeWindow();
    cumulative_ = {};
  }
  Q_EMIT changed();
}

void RunHistory::compactPoints() {
  // Average neighbours in pairs: the curve keeps its shape at half the resolution.
  std::vector<StepPoint> merged;
  merged.reserve(points_.size() / 2 + 1);
  for (size_t i = 0; i + 1 < points_.size(); i += 2) {
    StepPoint a = points_[i];
    const StepPoint& b = points_[i + 1];
    a.step = b.step;
    a.loss = (a.loss + b.loss) / 2;
    a.ce = (a.ce + b.ce) / 2;
    a.aux = (a.aux + b.aux) / 2;
    a.lr = b.lr;
    a.tokens_per_s = (a.tokens_per_s + b.tokens_per_s) / 2;
    merged.push_back(a);
  }
  if (points_.size() % 2) merged.push_back(points_.back());
  points_.swap(merged);
  points_.shrink_to_fit();
}

void RunHistory::thinSnapshots() {
  // Keep every other snapshot (the newest always), and take snapshots half as often from now.
  std::vector<RoutingSnapshot> kept;
  kept.reserve(snapshots_.size() / 2 + 1);
  const size_t n = snapshots_.size();
  for (size_t i = (n - 1) % 2; i < n; i += 2) kept.push_back(std::move(snapshots_[i]));
  snapshots_.swap(kept);
  snapshot_every_ *= 2;
}

size_t RunHistory::approximateBytes() const {
  size_t bytes = points_.capacity() * sizeof(StepPoint) +
                 validation_.capacity() * sizeof(ValidationPoint) +
                 changes_.capacity() * sizeof(ChangeEvent) + counts_bytes(open_.counts) +
                 counts_bytes(cumulative_);
  for (const auto& s : snapshots_) bytes += counts_bytes(s.counts);
  for (const auto& v : validation_) bytes += counts_bytes(v.routing) - sizeof(RoutingCounts);
  return bytes;
}

}  // namespace unipool::studio
