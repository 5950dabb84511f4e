// UniPool-lock's training state (SPEC section 8) and the work done on it at validations: the
// routing-count history, the partition, the reference loss and the fail-stop. Private to core/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "lock/partition.h"
#include "unipool/config.h"
#include "unipool/lock.h"

namespace unipool {

// How many validations the freeze's counts are smoothed over (weights 0.5^age).
constexpr size_t kLockHistory = 5;

struct LockState {
  std::vector<std::vector<int64_t>> history;  // last <= 5 validations' (L, N) counts, oldest first
  std::vector<int64_t> history_steps;
  Partition partition;                      // empty before the freeze
  std::vector<std::vector<int64_t>> owned;  // partition.owned as int64 for the router
  double reference_loss = std::numeric_limits<double>::quiet_NaN();
  int over_margin = 0;
  bool stopped = false;
  std::string stop_reason;

  void set_partition(Partition p);
  void add_counts(int64_t step, std::vector<int64_t> counts);
  // The history smoothed: each validation's rows normalised, weighted 0.5^age, summed. (L, N)
  std::vector<double> smoothed(int n_layers, int n_experts) const;
};

LockPhase lock_phase(const ModelConfig& config, const LockState& state, int64_t step);
LockStatus lock_status(const ModelConfig& config, const LockState& state, int64_t step);

}  // namespace unipool
