// The architectures' rules (see unipool/architecture.h).
#include "unipool/architecture.h"

#include <algorithm>

namespace unipool {

const std::vector<Architecture>& all_architectures() {
  static const std::vector<Architecture> all = {Architecture::UniPool, Architecture::Vanilla,
                                                Architecture::Grouped, Architecture::Dense,
                                                Architecture::UniPoolLock};
  return all;
}

std::string architecture_name(Architecture a) {
  switch (a) {
    case Architecture::UniPool:
      return "UniPool";
    case Architecture::Vanilla:
      return "vanilla";
    case Architecture::Grouped:
      return "grouped";
    case Architecture::Dense:
      return "dense";
    case Architecture::UniPoolLock:
      return "UniPool-lock";
  }
  return "UniPool";
}

std::optional<Architecture> parse_architecture(const std::string& name) {
  for (Architecture a : all_architectures())
    if (architecture_name(a) == name) return a;
  return std::nullopt;
}

std::string architecture_title(Architecture a) {
  switch (a) {
    case Architecture::UniPool:
      return "UniPool (one shared pool)";
    case Architecture::Vanilla:
      return "vanilla MoE";
    case Architecture::Grouped:
      return "grouped pools";
    case Architecture::Dense:
      return "dense";
    case Architecture::UniPoolLock:
      return "UniPool-lock (each expert owned by one layer)";
  }
  return "";
}

std::string architecture_explanation(Architecture a) {
  switch (a) {
    case Architecture::UniPool:
      return "one pool of experts shared by every layer";
    case Architecture::Vanilla:
      return std::to_string(kVanillaExpertsPerLayer) + " private experts per layer";
    case Architecture::Grouped:
      return "pools shared by consecutive layers";
    case Architecture::Dense:
      return "one FFN per layer";
    case Architecture::UniPoolLock:
      return "a shared pool whose experts each end up owned by one layer";
  }
  return "";
}

Architecture architecture_of(const ModelConfig& c) {
  if (c.lock.enabled) return Architecture::UniPoolLock;
  if (c.layers_per_group == 1 && c.experts_per_group == 1) return Architecture::Dense;
  if (c.layers_per_group == 1) return Architecture::Vanilla;
  if (c.layers_per_group < c.n_layers) return Architecture::Grouped;
  return Architecture::UniPool;
}

void apply_architecture(ModelConfig& c, Architecture a) {
  const int L = c.n_layers;
  c.lock = LockConfig{};
  switch (a) {
    case Architecture::UniPoolLock:
      c.layers_per_group = L;
      c.experts_per_group = kVanillaExpertsPerLayer * L;  // K = 8 per layer once locked
      c.top_k = std::min(c.top_k, kVanillaExpertsPerLayer);
      c.router = "norm";
      c.balance = "pool";
      c.lock = lock_schedule(1000);
      break;
    case Architecture::Vanilla:
      c.layers_per_group = 1;
      c.experts_per_group = kVanillaExpertsPerLayer;
      c.router = "softmax";
      c.balance = "layer";
      break;
    case Architecture::Grouped:
      c.layers_per_group = L % 2 == 0 ? 2 : 1;
      c.experts_per_group = kVanillaExpertsPerLayer;
      c.router = "norm";
      c.balance = "pool";
      break;
    case Architecture::Dense:
      c.layers_per_group = 1;
      c.experts_per_group = 1;
      c.top_k = 1;
      c.router = "softmax";
      c.balance = "none";
      c.aux_coef = 0.0;
      break;
    case Architecture::UniPool:
      c.layers_per_group = L;
      c.experts_per_group = kVanillaExpertsPerLayer / 2 * L;  // half the vanilla budget
      c.router = "norm";
      c.balance = "pool";
      break;
  }
}

}  // namespace unipool
