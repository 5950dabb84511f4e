// The live settings' names (unipool/live_settings.h): plain values, no engine. The recipe
// reader (ui/session) and the run log use them without LibTorch (tests/fuzz builds this alone).
#include <algorithm>
#include <type_traits>
#include <utility>

#include "unipool/live_settings.h"

namespace unipool {

RandomLayers RandomLayers::from_layer(int n_layers, int first) {
  RandomLayers r;
  r.layers.assign(size_t(std::max(n_layers, 0)), false);
  for (int l = std::max(first, 0); l < n_layers; ++l) r.layers[size_t(l)] = true;
  return r;
}

RandomLayers RandomLayers::toggled(const std::vector<bool>& current, int layer) {
  RandomLayers r{current};
  if (layer >= 0 && layer < int(r.layers.size()))
    r.layers[size_t(layer)] = !r.layers[size_t(layer)];
  return r;
}

namespace {

// Each setting's title for messages and its machine name, in one table.
std::pair<const char*, const char*> names_of(const LiveSetting& setting) {
  using Names = std::pair<const char*, const char*>;
  return std::visit(
      [](const auto& s) -> Names {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, LearningRate>) return {"Learning rate", "learning_rate"};
        if constexpr (std::is_same_v<T, AuxCoef>) return {"Aux coefficient", "aux_coef"};
        if constexpr (std::is_same_v<T, TopK>) return {"Top-k", "top_k"};
        if constexpr (std::is_same_v<T, RandomLayers>) return {"Random routing", "random_routing"};
        if constexpr (std::is_same_v<T, PoolSize>) return {"Pool size", "pool_resized"};
        if constexpr (std::is_same_v<T, ZCoef>) return {"Z-loss coefficient", "z_coef"};
        if constexpr (std::is_same_v<T, FreezeNow>) return {"Freeze", "freeze"};
        if constexpr (std::is_same_v<T, LockNow>) return {"Lock", "lock"};
      },
      setting);
}

}  // namespace

std::string setting_title(const LiveSetting& setting) { return names_of(setting).first; }
std::string setting_kind(const LiveSetting& setting) { return names_of(setting).second; }

bool kind_reshapes_routing(const std::string& kind) {
  return kind == "pool_resized" || kind == "top_k";
}

}  // namespace unipool
