// The value of one (layer, global expert) cell of a routing heatmap, shared by every view
// that draws one.
#pragma once

#include <cmath>
#include <limits>

#include "unipool/stats.h"

namespace unipool::studio {

// Share of the layer's routing choices (or mean gate per token) that went to `global_expert`;
// NaN where the layer's pool does not hold that expert or there is no routing yet.
inline double routingCellValue(const RoutingCounts& c, int layer, int global_expert,
                               bool gate_mass) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (c.empty() || layer < 0 || layer >= c.n_layers || c.layers_per_group <= 0) return nan;
  const int local = global_expert - (layer / c.layers_per_group) * c.experts_per_group;
  if (local < 0 || local >= c.experts_per_group) return nan;
  const size_t cell = size_t(layer) * size_t(c.experts_per_group) + size_t(local);
  const double T = double(c.tokens);
  return gate_mass ? c.gate_sum[cell] / T : double(c.counts[cell]) / (T * c.top_k);
}

}  // namespace unipool::studio
