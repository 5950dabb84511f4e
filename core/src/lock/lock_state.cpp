#include "lock/lock_state.h"

#include <cmath>

namespace unipool {

void LockState::set_partition(Partition p) {
  partition = std::move(p);
  owned.assign(partition.owned.size(), {});
  for (size_t l = 0; l < partition.owned.size(); ++l)
    owned[l].assign(partition.owned[l].begin(), partition.owned[l].end());
}

void LockState::add_counts(int64_t step, std::vector<int64_t> counts) {
  history.push_back(std::move(counts));
  history_steps.push_back(step);
  if (history.size() > kLockHistory) {
    history.erase(history.begin());
    history_steps.erase(history_steps.begin());
  }
}

std::vector<double> LockState::smoothed(int L, int N) const {
  std::vector<double> out(size_t(L) * size_t(N), 0.0);
  for (size_t v = 0; v < history.size(); ++v) {
    const double weight = std::pow(0.5, double(history.size() - 1 - v));  // newest: age 0
    for (int l = 0; l < L; ++l) {
      double total = 0;
      for (int e = 0; e < N; ++e) total += double(history[v][size_t(l * N + e)]);
      if (total <= 0) continue;
      for (int e = 0; e < N; ++e)
        out[size_t(l * N + e)] += weight * double(history[v][size_t(l * N + e)]) / total;
    }
  }
  return out;
}

LockPhase lock_phase(const ModelConfig& c, const LockState& s, int64_t step) {
  if (!c.lock.enabled) return LockPhase::None;
  if (s.partition.empty()) return LockPhase::FullPool;
  return step >= c.lock.lock_step ? LockPhase::Locked : LockPhase::Fade;
}

LockStatus lock_status(const ModelConfig& c, const LockState& s, int64_t step) {
  LockStatus st;
  st.enabled = c.lock.enabled;
  if (!st.enabled) return st;
  st.phase = lock_phase(c, s, step);
  st.alpha = st.phase == LockPhase::FullPool ? 0.0 : fade_alpha(c.lock, step);
  st.freeze_step = c.lock.freeze_step;
  st.lock_step = c.lock.lock_step;
  st.owned = s.partition.owned;
  st.coverage = s.partition.coverage;
  st.deficit = s.partition.deficit;
  st.coverage_met = s.partition.coverage_met;
  st.reference_loss = s.reference_loss;
  st.fail_line = s.reference_loss + c.lock.loss_margin;
  st.over_margin = s.over_margin;
  st.stopped = s.stopped;
  st.stop_reason = s.stop_reason;
  return st;
}

}  // namespace unipool
