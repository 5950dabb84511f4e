// The tensor table of a downloaded model (names and shapes per family), checked at open.
// Private to core/hf.
#pragma once

#include "hf/run_config.h"
#include "hf/run_weights.h"

namespace unipool::hf {

// MoeLayoutError naming the first tensor that is missing, misshapen or not a float format,
// or the first place where the tensors contradict config.json.
void check_tensors(const RunConfig& config, const RunWeights& weights);

}  // namespace unipool::hf
