// The feed-forward half of a downloaded model's layer: each family's router (SPEC section 10:
// softmax or sigmoid scores, greedy or group-limited selection, DeepSeek-V3's correction
// bias, renormalisation and routed scaling), the routed experts, shared experts and dense
// MLPs. Private to core/hf.
#pragma once

#include <torch/torch.h>

#include "hf/run_config.h"
#include "hf/run_weights.h"

namespace unipool::hf {

struct RoutedLayer {
  at::Tensor out;      // (T, hidden)
  at::Tensor experts;  // (T, k) int64, the chosen routed experts
  at::Tensor gates;    // (T, k) float, their gates (after renormalisation and scaling)
  at::Tensor scores;   // (T, E) the router's scores (softmax or sigmoid), for statistics
};

// Routing only: which experts and gates layer `layer` gives the tokens x (T, hidden).
// `random`: SPEC section 3's random routing, drawn from (seed, first_token + t).
RoutedLayer route(const RunConfig& c, const RunWeights& w, int layer, const at::Tensor& x,
                  bool random, uint64_t seed, int64_t first_token);

// The whole feed-forward of layer `layer` on x (T, hidden) (already normed): routed experts
// plus shared experts for a MoE layer (`routed` filled), the dense MLP otherwise.
at::Tensor feed_forward(const RunConfig& c, const RunWeights& w, int layer, const at::Tensor& x,
                        bool random, uint64_t seed, int64_t first_token, RoutedLayer* routed);

}  // namespace unipool::hf
