// The UniPool transformer of SPEC sections 2-4 on LibTorch tensors. Private to core/.
// Parameters live in a flat, ordered store keyed by their SPEC checkpoint names, so the
// checkpoint, the optimizer and pool resizing all work on the same list.
#pragma once

#include <torch/torch.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "unipool/config.h"

namespace unipool {

class ParamStore {
 public:
  void add(const std::string& name, at::Tensor tensor);
  at::Tensor& get(const std::string& name);
  const at::Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  size_t size() const { return names_.size(); }
  const std::string& name(size_t i) const { return names_[i]; }
  at::Tensor& tensor(size_t i) { return tensors_[i]; }
  const at::Tensor& tensor(size_t i) const { return tensors_[i]; }
  // AdamW's weight decay skips norms and NormRouter scales.
  static bool decays(const std::string& name);

 private:
  std::vector<std::string> names_;
  std::vector<at::Tensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// Names and shapes of SPEC section 6, in checkpoint order.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(
    const ModelConfig& config);

// Fresh parameters (leaf tensors requiring grad). Deterministic for a seed on any platform:
// values come from our own RNG, not torch's.
ParamStore init_parameters(const ModelConfig& config, uint64_t seed, at::ScalarType dtype);

// Per-call routing control: which layers route at random (SPEC section 3) and the counter
// that makes those draws reproducible.
struct RouteControl {
  std::vector<uint8_t> random_layers;  // (L) 1 = random; empty = none
  uint64_t random_seed = 0;            // draws are hash(random_seed, layer, token)
  bool with_entropy = false;           // also sum the router entropy (statistics)
  // Pool gradients go straight into the pool tensors' .grad (see moe_experts in ops.h); for
  // loss.backward() only, not for torch::autograd::grad().
  bool accumulate_pool_grads = false;
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
  std::vector<LayerRoute> routes;  // (L)
  double stats_seconds = 0.0;      // time spent on statistics-only work (router entropy)
};

// tokens: (B, S) int64 -> logits and losses. Builds the autograd graph unless grad mode is off.
ForwardResult forward(const ModelConfig& config, const ParamStore& params, const at::Tensor& tokens,
                      const RouteControl& control);

// ---- pieces of the forward pass, exposed for the tests ------------------------------------

struct RouterOutput {
  at::Tensor logits;  // (T, Mg) z = W x
  at::Tensor scores;  // (T, Mg) s
  at::Tensor local;   // (T, k) int64 chosen local experts
  at::Tensor gates;   // (T, k) differentiable gates
};

// SPEC section 3 for one layer. `scale` is the layer's NormRouter scale (undefined for softmax).
RouterOutput route_tokens(const ModelConfig& config, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& scale, bool random, uint64_t random_seed);

// Indices of the k largest scores per row, largest first; ties go to the lower index (SPEC
// leaves ties open; NormRouter's relu makes exact zeros common). scores (T, M) -> (T, k) int64.
at::Tensor top_k_lowest_index(const at::Tensor& scores, int k);

// top_k distinct local experts per token, uniform, from hash(seed, token): (T, k) int64.
at::Tensor random_experts(int64_t tokens, int experts_per_group, int top_k, uint64_t seed);

// Dropless dispatch: x (T, d), global expert ids (T, k), gates (T, k) -> (T, d)
//   out_t = sum_j gates[t, j] * expert_{ids[t, j]}(x_t)
// Tokens are grouped by expert with a counting sort; no expert sees a token it was not given.
at::Tensor dispatch_experts(const at::Tensor& x, const at::Tensor& global_ids,
                            const at::Tensor& gates, const at::Tensor& w_gate,
                            const at::Tensor& w_up, const at::Tensor& w_down,
                            bool accumulate_pool_grads = false);

// SPEC section 4. f: per layer (Mg) choice fractions (constants), P: per layer (Mg) mean scores.
at::Tensor balance_loss(const ModelConfig& config, const std::vector<at::Tensor>& f,
                        const std::vector<at::Tensor>& P);

}  // namespace unipool
