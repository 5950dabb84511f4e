// Small float GEMMs straight to the BLAS LibTorch loaded (OpenBLAS), skipping at::mm's and
// at::bmm's per-call dispatch, checks and per-batch tensor views: a training step of the
// teaching presets makes ~1,300 expert GEMMs and ~2,300 attention GEMMs (one per batch entry
// and causal block).
// The transpose flags and leading dimensions are the ones LibTorch's CPU addmm picks, so the
// results are bit for bit at::mm's / at::bmm's (tst_formulas). Anything else (other types or
// devices, an (M, 1) result, bmm entries under 400 multiply-adds, which at::bmm computes
// without BLAS, shapes LibTorch would refuse) takes LibTorch's own ops.
// Private to core/.
#pragma once

#include <torch/torch.h>

namespace unipool {

// out = beta * out + a @ b for 2-D matrices: out (M, N), a (M, K), b (K, N).
void gemm_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, float beta);

// out[i] = beta * out[i] + a[i] @ b[i] for every batch entry i: out (BK, M, N), a (BK, M, K),
// b (BK, K, N); any of them may be a narrowed or transposed view.
void bmm_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, float beta);

}  // namespace unipool
