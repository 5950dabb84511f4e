// Checkpoints (SPEC section 6): an engine's state to and from the model file and the training
// state beside it. inspect_checkpoint and train_state_path are public (unipool/engine.h).
// Private to core/.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "training/engine_state.h"

namespace unipool {

// Writes `<stem>.train.safetensors`, then the model file, each atomically. Refuses (throws
// CheckpointError) a model with a non-finite parameter.
void save_checkpoint(const EngineState& state, const std::string& path);

// Reads and checks a model file and, with `resume`, its training state; `data` overrides the
// stored data source. Throws CheckpointError naming the file and what is wrong.
std::unique_ptr<EngineState> load_checkpoint(const std::string& path, bool resume,
                                             const std::optional<DataSpec>& data);

}  // namespace unipool
