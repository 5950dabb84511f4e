// The balance loss of SPEC section 4 and UniPool-lock's entropy term (section 8.1). Private to
// core/.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "unipool/config.h"

namespace unipool {

// f: per layer (Mg) choice fractions (constants), P: per layer (Mg) mean scores -> scalar.
// "layer": the mean over layers of Mg * <f_l, P_l>; "pool": the same on f and P averaged over
// each pool's layers; "none" or aux_coef 0: zero.
at::Tensor balance_loss(const ModelConfig& config, const std::vector<at::Tensor>& f,
                        const std::vector<at::Tensor>& P);

// SPEC 8.1's target-cardinality term before its coefficient: sum over layers of
// (H(p_l / sum p_l) - ln target)^2, H in nats. mean_p: per layer (M) mean scores, all of one
// size -> scalar. The layers go through as one (L, M) tensor: a dozen small operations
// each way instead of a dozen per layer.
at::Tensor target_entropy_loss(const std::vector<at::Tensor>& mean_p, int target);

}  // namespace unipool
