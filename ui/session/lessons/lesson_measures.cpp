#include "session/lessons/lesson_measures.h"

#include <algorithm>
#include <cmath>

#include "session/run_session.h"
#include "unipool/stats.h"

namespace unipool::studio {

namespace {

constexpr size_t kLossPoints = 20;  // a smoothed loss: the mean of the last 20 steps

double meanLoss(const std::vector<StepPoint>& points, size_t from, size_t to) {
  double sum = 0;
  for (size_t i = from; i < to; ++i) sum += points[i].loss;
  return sum / double(std::max<size_t>(to - from, 1));
}

std::optional<double> lossNow(const RunSession& s) {
  const auto& points = s.history().points();
  if (points.empty()) return std::nullopt;
  const size_t n = points.size();
  return meanLoss(points, n - std::min(n, kLossPoints), n);
}

std::optional<double> validNow(const RunSession& s) {
  const auto& v = s.history().validation();
  if (v.empty()) return std::nullopt;
  return v.back().ce;
}

// The routing of the steps trained since `from`: the history's windows (the open one too) that
// began then or later and have the newest one's shape (a pool resize starts new windows).
RoutingCounts routingSince(const RunSession& s, int64_t from) {
  std::vector<RoutingSnapshot> snaps = s.history().snapshots();
  if (s.history().openWindow().steps > 0) snaps.push_back(s.history().openWindow());
  RoutingCounts window;
  if (snaps.empty()) return window;
  const RoutingCounts last = snaps.back().counts;
  for (const RoutingSnapshot& snap : snaps) {
    if (snap.step - snap.steps < from) continue;
    const RoutingCounts& c = snap.counts;
    if (c.n_layers != last.n_layers || c.experts_per_group != last.experts_per_group ||
        c.layers_per_group != last.layers_per_group || c.top_k != last.top_k)
      continue;
    if (window.empty() && window.counts.empty())
      window = c;
    else
      window.add(c);
  }
  return window;
}

// Busiest expert over a fair share of the routed tokens (zero-gate ones already taken out):
// in the worst layer (among the experts it may reach) and in the worst pool.
std::pair<double, double> imbalances(const RoutingCounts& c, const LockStatus& lock) {
  const int Mg = c.experts_per_group;
  const bool locked = lock.phase == LockPhase::Locked && !lock.owned.empty();
  double layer_worst = 0, pool_worst = 0;
  std::vector<double> pool(size_t(Mg), 0.0);
  for (int l = 0; l < c.n_layers; ++l) {
    double total = 0, busiest = 0;
    for (int e = 0; e < Mg; ++e) {
      const double n = double(c.count(l, e));
      total += n;
      busiest = std::max(busiest, n);
      pool[size_t(e)] += n;
    }
    const double reachable = locked ? double(lock.owned[size_t(l)].size()) : double(Mg);
    if (total > 0) layer_worst = std::max(layer_worst, busiest * reachable / total);
    if ((l + 1) % c.layers_per_group == 0) {  // the pool's last layer
      double pool_total = 0, pool_busiest = 0;
      for (double n : pool) pool_total += n, pool_busiest = std::max(pool_busiest, n);
      if (pool_total > 0) pool_worst = std::max(pool_worst, pool_busiest * Mg / pool_total);
      std::fill(pool.begin(), pool.end(), 0.0);
    }
  }
  return {layer_worst, pool_worst};
}

}  // namespace

MeasureBaseline baselineNow(const RunSession& session) {
  MeasureBaseline b;
  b.step = session.state().valid ? session.state().step : 0;
  b.loss = lossNow(session);
  b.valid_loss = validNow(session);
  return b;
}

std::optional<double> measureRun(const QString& name, const RunSession& s,
                                 const MeasureBaseline& base, QString* why) {
  auto none = [why](const QString& reason) -> std::optional<double> {
    if (why) *why = reason;
    return std::nullopt;
  };
  const RunState& st = s.state();
  if (!st.valid) return none(QStringLiteral("no run"));
  if (name == QLatin1String("step")) return double(st.step);
  if (name == QLatin1String("pool_size")) return double(st.config.experts_per_group);
  if (name == QLatin1String("top_k")) return double(st.config.top_k);
  if (name == QLatin1String("locked")) return st.lock.phase == LockPhase::Locked ? 1.0 : 0.0;
  if (name.startsWith(QLatin1String("loss"))) {
    const auto now = lossNow(s);
    if (!now) return none(QStringLiteral("the run has not trained"));
    if (name == QLatin1String("loss")) return now;
    if (name == QLatin1String("loss_drop")) {
      const auto& points = s.history().points();
      return meanLoss(points, 0, std::min<size_t>(points.size(), 10)) - *now;
    }
    if (!base.loss) return none(QStringLiteral("the run had not trained when the step began"));
    return *now - *base.loss;
  }
  if (name.startsWith(QLatin1String("valid"))) {
    const auto now = validNow(s);
    if (!now) return none(QStringLiteral("no validation yet ('do: evaluate')"));
    if (name == QLatin1String("valid_loss")) return now;
    if (!base.valid_loss || s.history().validation().size() < 2)
      return none(QStringLiteral("no validation before the step"));
    return *now - *base.valid_loss;
  }
  const RoutingCounts window = routingSince(s, base.step);
  if (window.empty()) return none(QStringLiteral("no routing recorded during this step"));
  const bool locked = st.lock.phase == LockPhase::Locked && !st.lock.owned.empty();
  const RoutingCounts routed = without_zero_gate(window, locked ? &st.lock.owned : nullptr);
  const RoutingSummary sum = summarize(routed);
  if (name == QLatin1String("imbalance")) return imbalances(routed, st.lock).first;
  if (name == QLatin1String("pool_imbalance")) return imbalances(routed, st.lock).second;
  if (name == QLatin1String("dead_experts")) return double(sum.dead_experts);
  if (name == QLatin1String("reuse")) return sum.reuse;
  if (name == QLatin1String("router_entropy")) return sum.router_entropy;
  if (name == QLatin1String("zero_gate")) {
    int64_t zero = 0;
    for (int64_t z : window.zero_gate) zero += z;
    return double(zero) / double(std::max<int64_t>(window.tokens * window.n_layers, 1));
  }
  if (name == QLatin1String("routes_outside") || name == QLatin1String("partition_coverage")) {
    if (st.lock.owned.empty()) return none(QStringLiteral("no partition yet ('do: freeze')"));
    const RoutingDiagnostics d = diagnose(window, &st.lock.owned);
    if (name == QLatin1String("routes_outside")) return double(d.routes_outside);
    return *std::min_element(d.partition_coverage.begin(), d.partition_coverage.end());
  }
  return none(QStringLiteral("unknown measure '%1'").arg(name));
}

}  // namespace unipool::studio
