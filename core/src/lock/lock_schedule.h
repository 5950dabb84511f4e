// UniPool-lock's schedule on an engine's state (SPEC section 8): the validations that feed
// the freeze, the freeze itself, the lock and the fail-stop. Private to core/.
#pragma once

#include <string>

#include "training/engine_state.h"

namespace unipool {

// After an applied step: validates when the schedule asks (every kValidationInterval steps),
// freezes at freeze_step, marks the lock and applies the fail-stop. Fills the metrics' lock
// fields. No-op for runs without a lock.
void lock_after_step(EngineState& state, StepMetrics& metrics);

// Freeze now (a teacher's button): validates on unfaded scores, solves the partition from the
// history and moves freeze_step to now (lock_step keeps its distance). Returns the marker.
std::string freeze_now(EngineState& state);
// Lock now: the partition is locked from the current step on. Returns the marker.
std::string lock_now(EngineState& state);

}  // namespace unipool
