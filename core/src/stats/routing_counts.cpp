// From one forward pass's routes to the raw sums of SPEC section 5. Runs every training step,
// so it is plain loops over the (T, k) index and gate tensors: no extra tensor ops.
#include "stats/routing_counts.h"

#include <algorithm>

namespace unipool {

RoutingCounts collect_routing(const ModelConfig& c, const std::vector<LayerRoute>& routes,
                              const uint8_t* domains, int n_domains) {
  const int L = c.n_layers, Mg = c.experts_per_group, k = c.top_k;
  RoutingCounts r(L, c.layers_per_group, Mg, k, domains ? n_domains : 0);
  if (routes.empty()) return r;
  const int64_t T = routes[0].local.size(0);
  r.tokens = T;
  std::vector<const int64_t*> ids(static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) {
    const LayerRoute& route = routes[size_t(l)];
    ids[size_t(l)] = route.local.data_ptr<int64_t>();
    const at::Tensor gates = route.gates.to(at::kDouble).contiguous();
    const double* gp = gates.data_ptr<double>();
    for (int64_t a = 0; a < T * k; ++a) {
      const size_t cell = size_t(l) * size_t(Mg) + size_t(ids[size_t(l)][a]);
      ++r.counts[cell];
      r.gate_sum[cell] += gp[a];
    }
    for (int64_t t = 0; t < T; ++t) {  // all of the token's gates 0: no expert output
      bool zero = true;
      for (int j = 0; j < k && zero; ++j) zero = gp[t * k + j] == 0.0;
      if (zero) ++r.zero_gate[size_t(l)];
    }
    r.entropy_sum[size_t(l)] = route.entropy_sum;
  }
  // Reuse (paper Table 9): distinct global experts among each token's L*k choices.
  std::vector<int64_t> chosen(static_cast<size_t>(L) * size_t(k));
  for (int64_t t = 0; t < T; ++t) {
    size_t n = 0;
    for (int l = 0; l < L; ++l) {
      const int64_t offset = int64_t(c.group_of_layer(l)) * Mg;
      for (int j = 0; j < k; ++j) chosen[n++] = offset + ids[size_t(l)][t * k + j];
    }
    std::sort(chosen.begin(), chosen.end());
    const auto distinct = std::unique(chosen.begin(), chosen.end()) - chosen.begin();
    r.reuse_sum += double(distinct) / double(chosen.size());
  }
  if (domains) {
    for (int64_t t = 0; t < T; ++t) {
      const int dom = domains[t];
      if (dom >= n_domains) continue;  // unlabelled bytes
      ++r.domain_tokens[size_t(dom)];
      for (int l = 0; l < L; ++l) {
        for (int j = 0; j < k; ++j) {
          const size_t cell = (size_t(dom) * size_t(L) + size_t(l)) * size_t(Mg) +
                              size_t(ids[size_t(l)][t * k + j]);
          ++r.domain_counts[cell];
        }
      }
    }
  }
  return r;
}

}  // namespace unipool
