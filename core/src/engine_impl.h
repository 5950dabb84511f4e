// Engine internals shared by engine.cpp, inference.cpp, checkpoint.cpp and resize.cpp.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "adamw.h"
#include "model.h"
#include "unipool/corpus.h"
#include "unipool/engine.h"

namespace unipool {

struct Engine::Impl {
  ModelConfig config;
  TrainOptions options;
  DataSpec data;
  int64_t step = 0;
  ParamStore params;
  AdamW optimizer;
  LabelledText train, valid;
  std::vector<bool> random_layers;  // (L)
  bool collect_stats = true;
  // (L, Mg) exponentially decayed choice counts: which experts are busy, for resizing.
  std::vector<double> recent_load;

  // Reads or generates the training text and splits off validation.
  void load_data();
  // Route control for a forward pass; `salt` separates training steps from evaluation.
  RouteControl route_control(uint64_t salt, const std::optional<std::vector<bool>>& random,
                             bool with_entropy) const;
  // (B, S+1) int64 windows of the training text for `at_step`; their domains into `domains`.
  at::Tensor sample_batch(int64_t at_step, std::vector<uint8_t>* domains) const;
  void reset_recent_load();
};

// SPEC section 5 sums for one forward pass. `domains`: (T) labels or nullptr.
RoutingCounts collect_routing(const ModelConfig& config, const std::vector<LayerRoute>& routes,
                              const uint8_t* domains, int n_domains);

// Salts of the counter-based RNG: hash(seed, salt, step) never repeats across uses.
constexpr uint64_t kSaltTrainRouting = 0x7261696E;
constexpr uint64_t kSaltEvalRouting = 0x6576616C;
constexpr uint64_t kSaltBatch = 0x62617463;
constexpr uint64_t kSaltResize = 0x72657369;

}  // namespace unipool
