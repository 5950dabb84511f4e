// Who owns which experts: the four architectures a model can have, and what each implies for
// the pool layout (G, Mg), the router and the balance loss. The one definition that the presets,
// the studio's new-run form and the checkpoint inspector ask.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "unipool/config.h"

namespace unipool {

enum class Architecture {
  UniPool,      // one pool shared by every layer (G = L)
  Vanilla,      // layer-wise MoE: each layer owns its experts (G = 1)
  Grouped,      // pools shared by consecutive layers (1 < G < L)
  Dense,        // one SwiGLU FFN per layer (G = 1, Mg = 1)
  UniPoolLock,  // one pool of K x L experts, each ending up owned by one layer (SPEC 8)
};

// The vanilla MoE a budget is measured against: this many private experts per layer.
constexpr int kVanillaExpertsPerLayer = 8;

const std::vector<Architecture>& all_architectures();
std::string architecture_name(Architecture a);  // "UniPool", "vanilla", "grouped", "dense"
std::optional<Architecture> parse_architecture(const std::string& name);
// A line for a heading: "UniPool (one shared pool)", "vanilla MoE", ...
std::string architecture_title(Architecture a);
// A sentence for a tooltip or a summary.
std::string architecture_explanation(Architecture a);

// What a config is, read from its pool layout.
Architecture architecture_of(const ModelConfig& config);

// Turns `config` into architecture `a` for its current n_layers, as the paper's setups do:
//   UniPool: G = L, Mg = 4L (half the vanilla budget), NormRouter, pool balance
//   vanilla: G = 1, Mg = 8, softmax router, layer balance
//   grouped: G = 2 (1 for an odd L), Mg = 8, NormRouter, pool balance
//   dense:   G = 1, Mg = 1, top-1, softmax over one expert, no balance loss (aux 0)
//   UniPool-lock: G = L, Mg = 8L (the vanilla budget), NormRouter, pool balance, top-k at most
//            8, and the lock schedule of a 1,000-step run (lock_schedule)
// Every rule but UniPool-lock's turns the lock off. Sizes, top-k (except dense and lock) and
// the aux coefficient (except dense) are kept. router_c is
// left to refresh_router_constant.
void apply_architecture(ModelConfig& config, Architecture a);

}  // namespace unipool
