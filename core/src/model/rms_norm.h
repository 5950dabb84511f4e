// RMSNorm (SPEC section 2) with a hand-written backward. Private to core/.
#pragma once

#include <torch/torch.h>

namespace unipool {

// RMSNorm over the last dimension: x / sqrt(mean(x^2) + eps) * weight.
// x: (..., d), weight: (d) -> (..., d)
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace unipool
