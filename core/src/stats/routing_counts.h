// From one forward pass's routes to the raw sums of SPEC section 5. Private to core/.
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer.h"
#include "unipool/stats.h"

namespace unipool {

// SPEC section 5 sums for one forward pass. `domains`: (T) labels or nullptr.
RoutingCounts collect_routing(const ModelConfig& config, const std::vector<LayerRoute>& routes,
                              const uint8_t* domains, int n_domains);

}  // namespace unipool
