// Evaluation (SPEC section 7), per-token routes, generation and weight inspection on an
// engine's state: no gradients, no change to the training state. Private to core/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "training/engine_state.h"

namespace unipool {

EvalResult evaluate_text(const EngineState& state, const std::string& text, int seq,
                         const std::optional<std::vector<bool>>& random_layers,
                         int64_t max_windows, uint64_t draw = 0);
// `unfaded`: UniPool-lock's partition and fade left out (the freeze's counts, SPEC 8.2).
// Data parallel: a collective (every rank calls it; the windows are shared out and summed).
EvalResult evaluate_validation(const EngineState& state, int64_t max_windows,
                               bool unfaded = false);
TokenRoutes token_routes(const EngineState& state, const std::string& text);
std::string generate_text(const EngineState& state, const std::string& prompt,
                          const GenerateOptions& options);
std::vector<TensorInfo> tensor_infos(const EngineState& state);
std::vector<double> expert_norms(const EngineState& state);       // (N)
std::vector<double> expert_similarity(const EngineState& state);  // (N, N) row-major

}  // namespace unipool
