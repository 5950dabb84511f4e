// Growing and shrinking the expert pools of a model that is training. Private to core/.
#pragma once

#include <vector>

#include "training/engine_state.h"

namespace unipool {

// Every pool goes from Mg to new_mg experts (see resize.cpp); throws invalid_argument, changing
// nothing, for a size below top_k or a bad `drop` list.
ResizeReport resize_pools(EngineState& state, int new_mg, const std::vector<int>& drop);

}  // namespace unipool
