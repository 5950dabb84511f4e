// The live settings (unipool/live_settings.h) carried out on an engine's state, between steps.
// Each case validates first and changes nothing when it throws.
#include "training/live_settings.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "lock/lock_schedule.h"
#include "training/resize.h"

namespace unipool {

namespace {

// The overloaded-lambda idiom for std::visit.
template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::string number(double v) {  // three significant digits, as the markers show them
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string random_marker(const std::vector<bool>& layers) {
  std::string list;
  for (size_t l = 0; l < layers.size(); ++l)
    if (layers[l]) list += (list.empty() ? "" : ",") + std::to_string(l);
  return list.empty() ? "random: off" : "random: L" + list;
}

}  // namespace

AppliedSetting apply_live_setting(EngineState& s, const LiveSetting& setting) {
  AppliedSetting applied;
  applied.kind = setting_kind(setting);
  std::visit(
      Overloaded{
          [&](const LearningRate& v) {
            TrainOptions o = s.options;
            o.lr = v.peak;
            validate(o);
            s.options = o;
            applied.marker = "lr " + number(v.peak);
          },
          [&](const AuxCoef& v) {
            ModelConfig c = s.config;
            c.aux_coef = v.value;
            validate(c);
            s.config = c;
            applied.marker = "aux " + number(v.value);
          },
          [&](const TopK& v) {
            ModelConfig c = s.config;
            c.top_k = v.k;
            validate(c);  // the range check names top_k; router_c is still the old, valid one
            refresh_router_constant(c);
            s.config = c;
            applied.marker = "top-" + std::to_string(v.k);
          },
          [&](const RandomLayers& v) {
            if (v.layers.size() != size_t(s.config.n_layers)) {
              throw std::invalid_argument("random layers: expected " +
                                          std::to_string(s.config.n_layers) + " switches, got " +
                                          std::to_string(v.layers.size()));
            }
            s.random_layers = v.layers;
            applied.marker = random_marker(v.layers);
          },
          [&](const PoolSize& v) {
            const ResizeReport r = resize_pools(s, v.experts_per_group, v.drop);
            applied.marker = "pool " + std::to_string(r.old_experts_per_group) + " -> " +
                             std::to_string(r.new_experts_per_group);
          },
          [&](const ZCoef& v) {
            ModelConfig c = s.config;
            c.z_coef = v.value;
            validate(c);
            s.config = c;
            applied.marker = "z " + number(v.value);
          },
          [&](const FreezeNow&) {
            freeze_now(s);
            applied.marker = "freeze";
          },
          [&](const LockNow&) {
            lock_now(s);
            applied.marker = "lock";
          },
      },
      setting);
  applied.reshapes_routing = kind_reshapes_routing(applied.kind);
  return applied;
}

}  // namespace unipool
