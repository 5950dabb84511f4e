// One optimizer step on an engine's state. Private to core/.
#pragma once

#include "training/engine_state.h"

namespace unipool {

// Draws the batch for state.step, runs forward and backward, clips and applies AdamW. A
// non-finite loss or gradient leaves weights, moments and the step counter as they were
// (metrics.applied = false). Throws DataError when the state has no training text.
StepMetrics train_step(EngineState& state);

}  // namespace unipool
