// The settings a user may change while a run trains, as values. A front end (the studio's
// session, a script) builds one, the engine's apply() carries it out between two steps or
// refuses it, and the result names the change for the loss curves' marker and the metrics.
//
// Adding a live setting: a struct here and its entry in LiveSetting, its case in
// core/src/training/live_settings.cpp, and its control in the studio. Nothing else.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace unipool {

struct LearningRate {
  double peak = 0;  // the schedule's peak; warm-up and cosine go on from the current step
};
struct AuxCoef {
  double value = 0;  // the balance loss's coefficient (SPEC section 4)
};
struct ZCoef {
  double value = 0;  // the router z-loss's coefficient (SPEC section 4)
};
struct TopK {
  int k = 1;  // experts per token; the NormRouter constant is recomputed
};
// Which layers route at random (SPEC section 3), in training and evaluation. The one place
// the "which layers" vector is built.
struct RandomLayers {
  std::vector<bool> layers;  // (L)

  // Layers first..L-1 random, the rest learned ("random from layer k down"); first >= L: none.
  static RandomLayers from_layer(int n_layers, int first);
  // `current` with one layer's switch flipped (a click on a heatmap row).
  static RandomLayers toggled(const std::vector<bool>& current, int layer);
};
// Experts in each pool (Mg). Growing copies the busiest experts; shrinking drops the least
// loaded, or the global experts named in `drop` (the same number from each pool).
struct PoolSize {
  int experts_per_group = 1;
  std::vector<int> drop;
};

// UniPool-lock runs (SPEC section 8): set the partition now from the validation routing, or
// lock the partition now, instead of waiting for the schedule's freeze_step / lock_step.
struct FreezeNow {};
struct LockNow {};

using LiveSetting =
    std::variant<LearningRate, AuxCoef, TopK, RandomLayers, PoolSize, ZCoef, FreezeNow, LockNow>;

// What apply() did, for a marker on the loss curves.
struct AppliedSetting {
  std::string kind;    // stable machine name: "learning_rate", "aux_coef", "top_k", ...
  std::string marker;  // short label: "lr 0.003", "random: L3,4,5", "pool 24 -> 16"
  // Pool size and top-k change the shape of the routing counts: routing windows restart.
  bool reshapes_routing = false;
};

// The setting's name for messages ("Learning rate", "Pool size") and its machine name.
std::string setting_title(const LiveSetting& setting);
std::string setting_kind(const LiveSetting& setting);
// Whether a change of this kind reshapes the routing counts (pool size, top-k).
bool kind_reshapes_routing(const std::string& kind);

}  // namespace unipool
