// The balance loss of SPEC section 4. Private to core/.
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

}  // namespace unipool
