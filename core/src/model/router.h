// Routing of one layer (SPEC section 3): router scores (NormRouter or softmax), top-k with
// ties to the lower index, and random routing with the learned gates' scale. Private to core/.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "unipool/config.h"

namespace unipool {

struct RouterOutput {
  at::Tensor logits;  // (T, Mg) z = W x
  at::Tensor scores;  // (T, Mg) s; a locked layer's: (T, K), its owned columns only
  at::Tensor owned;   // (K) int64: the columns of `scores` for a locked layer; else undefined
  at::Tensor local;   // (T, k) int64 chosen local experts
  at::Tensor gates;   // (T, k) differentiable gates
};

// UniPool-lock's hold on one layer's routing (SPEC section 8), applied after NormRouter: the
// logits and their L2 norm still cover the whole pool.
struct LayerLock {
  // Fade: scores of experts outside the layer's partition are multiplied by (1 - alpha).
  const std::vector<int64_t>* owned = nullptr;  // (K) ascending; nullptr: no partition yet
  double alpha = 0.0;                           // 1: locked (outside experts unselectable)
};

// SPEC section 3 for one layer. `scale` is the layer's NormRouter scale (undefined for softmax).
// With a lock, `scores` are the faded (or masked) scores that top-k, gates and losses use; a
// locked layer routes over its owned experts only (the compact step).
RouterOutput route_tokens(const ModelConfig& config, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& scale, bool random, uint64_t random_seed,
                          const LayerLock& lock = {});
// The same with the operators of `ops` (model/backend.h); the above uses the fused CPU ones.
class StepBackend;
// `first_token` numbers the tokens for random routing's draws (data parallelism: a rank's
// tokens continue the global batch's numbering).
RouterOutput route_tokens(const StepBackend& ops, const ModelConfig& config, const at::Tensor& x,
                          const at::Tensor& weight, const at::Tensor& scale, bool random,
                          uint64_t random_seed, const LayerLock& lock = {},
                          int64_t first_token = 0);

// Indices of the k largest scores per row, largest first; ties go to the lower index (SPEC
// leaves ties open; NormRouter's relu makes exact zeros common). scores (T, M) -> (T, k) int64.
at::Tensor top_k_lowest_index(const at::Tensor& scores, int k);

// top_k distinct local experts per token, uniform, from hash(seed, token): (T, k) int64.
at::Tensor random_experts(int64_t tokens, int experts_per_group, int top_k, uint64_t seed,
                          int64_t first_token = 0);

// The layer's mean score per local expert (Mg), 0 outside a locked layer's partition: the P of
// the balance loss. mean: r.scores.mean(0), (Mg) or a locked layer's (K).
at::Tensor pool_mean_scores(const RouterOutput& r, const at::Tensor& mean, int experts_per_group);

// Normalised entropy of each token's score distribution (scores / their sum), summed over
// tokens: a statistic only (SPEC section 5). scores: (T, M).
double router_entropy_sum(const at::Tensor& scores);

}  // namespace unipool
