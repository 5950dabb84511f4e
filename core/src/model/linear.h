// The projections (q, k, v, o, lm_head): x (T, in) @ w^T with w (out, in), one autograd node
// whose three GEMMs (forward; dx and dw backward) are the engine's (blas_gemm.h), split over
// the compute threads. They are the same BLAS calls at::mm and its backward make, so at one
// thread the bytes are at::mm's. Private to core/.
#pragma once

#include <torch/torch.h>

namespace unipool {

at::Tensor linear_rows(const at::Tensor& x, const at::Tensor& w);

}  // namespace unipool
