// Live settings carried out on an engine's state. Private to core/.
#pragma once

#include "training/engine_state.h"
#include "unipool/live_settings.h"

namespace unipool {

// Validates and applies `setting` (between steps); throws ConfigError or invalid_argument,
// changing nothing, for a value the model cannot take.
AppliedSetting apply_live_setting(EngineState& state, const LiveSetting& setting);

}  // namespace unipool
