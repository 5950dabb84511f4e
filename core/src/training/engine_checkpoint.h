// An engine's state to and from a checkpoint record (io/checkpoint.h): the moments, the data
// and UniPool-lock's part (lock/lock_checkpoint.h) are added or restored here, so io/ writes
// and reads plain values only. Private to core/.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "training/engine_state.h"

namespace unipool {

void save_engine_state(const EngineState& state, const std::string& path);
// `data` overrides the stored data source (and loads it); without `resume`, a model alone.
std::unique_ptr<EngineState> open_engine_state(const std::string& path, bool resume,
                                               const std::optional<DataSpec>& data);

}  // namespace unipool
