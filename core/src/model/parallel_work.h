// The engine's threads (issue 25). One pool: LibTorch's intra-op threads (OpenMP). OpenBLAS
// runs every GEMM on the thread that calls it, so the two pools never compete for the cores
// (they did: 2 threads were 4x slower than 1 when both spun). The work is split where it is
// independent and large enough: a GEMM by rows or columns of its result (blas_gemm.cpp), the
// experts of a MoE layer and the batch entries of a batched GEMM (experts.cpp, blas_gemm.cpp),
// rows of the norms, RoPE and softmax. Every task writes only its own part of a result and
// computes it with the same arithmetic whichever thread runs it, so a thread count gives the
// same bytes every time; docs/performance.md says which results also match across counts.
// Private to core/.
#pragma once

#include <cstdint>
#include <functional>

namespace unipool {

// The training engine's setting: `threads` in LibTorch's pool, OpenBLAS on one thread.
void use_engine_threads(int threads);
// The downloaded models' forward pass (hf/): OpenBLAS gets `threads` for its large GEMMs,
// LibTorch's pool one.
void use_blas_threads(int threads);

// Threads available to split work now: 1 inside a parallel region (no nesting).
int parallel_threads();

// work(i) for every i in [0, n), each exactly once, the costliest first (cost(i)), handed out
// to the threads as they come free. Serial when parallel_threads() is 1 or n < 2. An exception
// in any work(i) is rethrown here.
void parallel_items(int64_t n, const std::function<int64_t(int64_t)>& cost,
                    const std::function<void(int64_t)>& work);

}  // namespace unipool
