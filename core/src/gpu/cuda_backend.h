// The CUDA-kernels backend (model/backend.h): the generic backend with the MoE block after
// routing (permutation, gather, grouped SwiGLU, combine, and their backward passes) in the
// kernels of kernels/ through gpu/moe_cuda.h. Built only with UNIPOOL_CUDA; never run by the
// session that wrote it (no GPU): docs/gpu-results.md lists what a GPU session must check.
#pragma once

#include <memory>

#include "model/backend.h"

namespace unipool {

// make_cuda_kernels_backend(bool bf16) is declared in model/backend.h and defined in
// cuda_backend.cpp.

}  // namespace unipool
