// The UniPool transformer's forward pass (SPEC sections 2-4) on LibTorch tensors: tokens to
// logits, the balance and z losses, and each layer's routing. Private to core/.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "model/parameters.h"
#include "unipool/config.h"

namespace unipool {

// Per-call routing control: which layers route at random (SPEC section 3) and the counter
// that makes those draws reproducible.
class StepBackend;

struct RouteControl {
  // The operators (model/backend.h); nullptr: the fused CPU ones.
  const StepBackend* backend = nullptr;
  // Data parallelism: sums a float64 tensor over the ranks (empty: one process). The forward
  // calls it once, after the last layer, on every layer's choice counts (and, in a lock run,
  // the layers' mean scores), so that the balance loss, the entropy term and the statistics
  // see the global batch. first_token is this rank's first token in the global batch, so that
  // random routing draws what one process would.
  std::function<void(at::Tensor&)> reduce_sum;
  int world_size = 1;
  int64_t first_token = 0;
  std::vector<bool> random_layers;  // (L) true = random; empty = none
  uint64_t random_seed = 0;         // draws are hash(random_seed, layer, token)
  bool with_entropy = false;        // also sum the router entropy (statistics)
  // Pool gradients go straight into the pool tensors' .grad (see moe_experts in experts.h);
  // for loss.backward() only, not for torch::autograd::grad().
  bool accumulate_pool_grads = false;
  // UniPool-lock (SPEC section 8): each layer's owned experts (nullptr: no partition yet), the
  // fade's alpha (1: locked), and this step's entropy-loss coefficient (0: no term) with its
  // target cardinality K.
  const std::vector<std::vector<int64_t>>* owned = nullptr;
  double lock_alpha = 0.0;
  double entropy_coef = 0.0;
  int entropy_target = 1;
};

struct LayerRoute {
  at::Tensor local;             // (T, k) int64: chosen local experts
  at::Tensor gates;             // (T, k): gates applied, detached
  std::vector<int64_t> counts;  // (Mg): choices per local expert
  double entropy_sum = 0.0;     // sum over tokens of the normalised router entropy
};

struct ForwardResult {
  at::Tensor logits;               // (B, S, V)
  at::Tensor aux;                  // scalar balance loss (0 when balance = none)
  at::Tensor z_loss;               // scalar
  at::Tensor entropy_loss;         // scalar: UniPool-lock's target-cardinality term; undefined
                                   // when the step has none
  std::vector<LayerRoute> routes;  // (L)
  double stats_seconds = 0.0;      // time spent on statistics-only work (router entropy)
};

// tokens: (B, S) int64 -> logits and losses. Builds the autograd graph unless grad mode is off.
ForwardResult forward(const ModelConfig& config, const ParamStore& params, const at::Tensor& tokens,
                      const RouteControl& control);

}  // namespace unipool
