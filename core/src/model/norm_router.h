// NormRouter's scores (paper Eq. 7) in one pass each way, with a hand-written backward:
//   s[t, j] = a * relu(z[t, cols[j]] / (||z[t, :]|| + 1e-8)),  a = scale * c
// The norm always covers every logit; `cols` (optional, ascending) selects the columns whose
// scores are wanted (a locked UniPool-lock layer's own experts). Private to core/.
#pragma once

#include <torch/torch.h>

namespace unipool {

// z: (T, M) logits; scale: (1) learned; c: the NormRouter constant; cols: (K) int64 or
// undefined (all M columns) -> (T, K or M).
at::Tensor norm_router_scores(const at::Tensor& z, const at::Tensor& scale, double c,
                              const at::Tensor& cols = at::Tensor());

}  // namespace unipool
