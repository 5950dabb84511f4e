// The balance loss (SPEC section 4): per layer, or per pool over the pool's layers, summed
// over layers (or pools) as the reference code sums them: each layer (pool) carries the full
// coefficient.
#include "model/losses.h"

#include <cmath>

namespace unipool {

at::Tensor balance_loss(const ModelConfig& c, const std::vector<at::Tensor>& f,
                        const std::vector<at::Tensor>& P) {
  const auto options = P.front().options();
  if (c.balance == "none" || c.aux_coef == 0.0) return at::zeros({}, options);
  const double mg = c.experts_per_group;
  if (c.balance == "layer") {
    at::Tensor total = at::zeros({}, options);
    for (size_t l = 0; l < P.size(); ++l) total = total + mg * (f[l] * P[l]).sum();
    return total * c.aux_coef;  // Megatron's per-layer loss, the full coefficient each
  }
  // Pool balance (paper Eqs. 4-6): average f and P over each group's layers, then Mg * <fbar,
  // Pbar>; one accumulator per group, every group's loss added.
  const int G = c.layers_per_group, groups = c.n_groups();
  at::Tensor total = at::zeros({}, options);
  for (int g = 0; g < groups; ++g) {
    at::Tensor fbar = f[size_t(g * G)], pbar = P[size_t(g * G)];
    for (int j = 1; j < G; ++j) {
      fbar = fbar + f[size_t(g * G + j)];
      pbar = pbar + P[size_t(g * G + j)];
    }
    total = total + mg * ((fbar / double(G)) * (pbar / double(G))).sum();
  }
  return total * c.aux_coef;
}

at::Tensor target_entropy_loss(const std::vector<at::Tensor>& mean_p, int target) {
  const at::Tensor means = at::stack(mean_p);                // (L, M)
  const at::Tensor p = means / (means.sum(1, true) + 1e-8);  // each layer's distribution
  const at::Tensor H = -(p * (p + 1e-8).log()).sum(1);       // (L) nats
  return (H - std::log(double(target))).pow(2).sum();
}

}  // namespace unipool
