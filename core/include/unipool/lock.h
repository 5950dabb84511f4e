// UniPool-lock (SPEC section 8): a brief full-pool phase, then each expert gets one owner
// layer, the others fade out of that layer on a cosine ramp, and the partition is locked.
// This header holds the config part (the checkpoint config's "lock" key) and the phases.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace unipool {

struct LockConfig {
  bool enabled = false;  // serialised as the presence of the "lock" key
  // "learned": the partition is solved from validation routing at the freeze; "random": the
  // paper's control, a random disjoint partition fixed and locked at step 0.
  std::string partition = "learned";
  int freeze_step = 0;         // the validation step whose routing sets the partition
  int lock_step = 0;           // out-of-partition experts can no longer be chosen from here
  double entropy_coef = 5e-3;  // target-cardinality entropy loss (SPEC 8.1)
  int entropy_warmup = 0;      // steps of its linear warm-up (0: none)
  double coverage = 0.95;      // each layer keeps at least this share of its routed tokens
  double loss_margin = 0.05;   // fail-stop: validation above reference + margin, twice
  bool operator==(const LockConfig& o) const;
  bool operator!=(const LockConfig& o) const { return !(*this == o); }
};

// A learned lock schedule for a run of `total_steps`: freeze and lock at these fractions of it,
// each rounded to a validation step (a multiple of kValidationInterval, at least one
// interval apart); the entropy warm-up is total_steps / 60, as in the paper.
LockConfig lock_schedule(int total_steps, double freeze_fraction = 0.15,
                         double lock_fraction = 0.30);

// Moves a learned schedule to a run of `total_steps` (same fractions, same rounding); a random
// partition, a config without a lock and the other lock settings are left as they are.
void fit_lock_schedule(LockConfig& lock, int total_steps);

enum class LockPhase { None, FullPool, Fade, Locked };
const char* lock_phase_name(LockPhase phase);  // "none", "full_pool", "fade", "locked"

// alpha of SPEC 8.3 at `step` in [freeze, lock): (1 - cos(pi (step - freeze) / (lock -
// freeze))) / 2; 0 before the freeze, 1 from the lock on.
double fade_alpha(const LockConfig& lock, int64_t step);
double fade_alpha(int freeze_step, int lock_step, int64_t step);  // the same from the two steps

// c(step) of SPEC 8.1: entropy_coef * min(step / entropy_warmup, 1).
double entropy_coef_at(const LockConfig& lock, int64_t step);

// Where a lock run stands, as plain values for the CLI and the studio.
struct LockStatus {
  bool enabled = false;
  LockPhase phase = LockPhase::None;
  double alpha = 0.0;  // the fade at the current step (1 once locked)
  int freeze_step = 0, lock_step = 0;
  std::vector<std::vector<int>> owned;  // (L, K) global ids per layer; empty before the freeze
  std::vector<double> coverage;         // (L) of the freeze's counts kept by each layer's experts
  std::vector<double> deficit;          // (L) coverage short of the target (fallback only)
  bool coverage_met = true;
  double reference_loss = std::numeric_limits<double>::quiet_NaN();  // validation CE at freeze
  double fail_line = std::numeric_limits<double>::quiet_NaN();       // reference + loss_margin
  int over_margin = 0;  // validations in a row above the fail line
  bool stopped = false;
  std::string stop_reason;
};

}  // namespace unipool
