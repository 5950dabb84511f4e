// UniPool-lock's part of a checkpoint (SPEC section 8): the model file's "ownership" metadata
// (a JSON L x K list of global ids) and the training state's "lock_state" (count history,
// partition, reference loss, fail-stop counter). Private to core/.
#pragma once

#include <map>
#include <string>

#include "training/engine_state.h"

namespace unipool {

// Adds the lock's metadata to the two files' metadata maps (nothing for runs without a lock).
void save_lock_metadata(const EngineState& state, std::map<std::string, std::string>& model_meta,
                        std::map<std::string, std::string>& state_meta);

// Restores the partition from the model file's "ownership" (inspection, evaluation), and with
// `resume` the whole lock state from the training state's "lock_state". Throws CheckpointError
// for a lock run without its state, or a malformed one.
void load_lock_metadata(EngineState& state, const std::map<std::string, std::string>& model_meta,
                        const std::map<std::string, std::string>* state_meta,
                        const std::string& model_path, const std::string& state_path);

}  // namespace unipool
