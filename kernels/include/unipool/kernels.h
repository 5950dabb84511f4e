// CUDA kernels of the MoE block (SPEC section 3): routing, permutation, grouped SwiGLU experts
// and the gate-weighted combine, each with the backward pass training needs.
//
// Plain CUDA: raw device pointers and a stream, no LibTorch, so the library compiles against
// any LibTorch (and on CI machines with nvcc but no GPU). Nothing here synchronises with the
// host: per-expert counts stay on the device and the kernels that need them read them there.
// Every function returns the launch status (cudaGetLastError), never waits for the kernels.
//
// Shapes: T tokens, k = top_k choices per token, A = T * k routed rows ("slots": slot
// a = t * k + j is token t's j-th choice), E experts of one pool, d = d_model, h =
// expert_hidden. Rows of an expert-sorted (A, .) matrix belong to expert e for r in
// [offsets[e], offsets[e + 1]); within an expert rows keep slot order (stable).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace unipool::kernels {

// Element type of activations and expert weights. Routing is always fp32; every kernel
// accumulates in fp32; weight gradients are fp32 buffers whatever the weights are.
enum class DType { F32, BF16 };
enum class Router { Norm, Softmax };

// The routing kernels keep a token's choices in registers.
constexpr int kMaxTopK = 8;

struct RouteParams {
  int64_t tokens = 0;  // T
  int experts = 0;     // Mg, the layer's local experts
  int top_k = 1;       // 1..kMaxTopK
  Router router = Router::Norm;
  float router_c = 1.0f;     // NormRouter constant c
  bool renormalize = false;  // gates = s / sum of the selected s
  bool random = false;       // random routing for this layer (SPEC section 3)
  uint64_t seed = 0;         // per-layer seed: token t draws from hash_u64(seed, t), as on CPU
};

// logits: (T, Mg); scale: 1 float on the device (NormRouter) or null (softmax).
// Writes scores (T, Mg), top (T, k) the learned top-k (largest first, ties to the lower
// index), local (T, k) the experts used (== top unless random) and gates (T, k).
cudaError_t route_forward(const RouteParams& p, const float* logits, const float* scale,
                          float* scores, int32_t* top, int32_t* local, float* gates,
                          cudaStream_t stream);

// grad_gates: (T, k) -> grad_logits: (T, Mg), overwritten; grad_scale: 1 float, ADDED to
// (NormRouter only; may be null for softmax). Inputs as saved by route_forward.
cudaError_t route_backward(const RouteParams& p, const float* logits, const float* scale,
                           const float* scores, const int32_t* top, const float* grad_gates,
                           float* grad_logits, float* grad_scale, cudaStream_t stream);

// Bytes of device scratch permute() needs for A slots and E experts.
size_t permute_workspace_bytes(int64_t slots, int experts);

// expert: (A) int32 local expert of each slot, each in [0, E). Writes counts (E),
// offsets (E + 1) exclusive prefix sum of counts, sorted_slot (A) the slot of each sorted row
// and slot_row (A) the sorted row of each slot (the inverse permutation).
cudaError_t permute(const int32_t* expert, int64_t slots, int experts, void* workspace,
                    int32_t* counts, int32_t* offsets, int32_t* sorted_slot, int32_t* slot_row,
                    cudaStream_t stream);

// x_sorted (A, d) = x[sorted_slot[r] / k]: each sorted row gets its token's input row.
cudaError_t gather_rows(DType dtype, int64_t slots, int k, int d, const void* x,
                        const int32_t* sorted_slot, void* x_sorted, cudaStream_t stream);

struct ExpertShape {
  int64_t rows = 0;  // A
  int experts = 0;   // E: weights hold E experts (offset the pointers for a pool's first one)
  int d = 0;
  int h = 0;
};

// y = w_down[e] @ (silu(w_gate[e] @ x) * (w_up[e] @ x)) for every sorted row of expert e, all
// experts in one launch per GEMM. x: (A, d); w_gate, w_up: (E, h, d); w_down: (E, d, h);
// writes g, u: (A, h) the projections (saved for backward), act: (A, h) and y: (A, d).
cudaError_t swiglu_forward(DType dtype, const ExpertShape& s, const int32_t* offsets, const void* x,
                           const void* w_gate, const void* w_up, const void* w_down, void* g,
                           void* u, void* act, void* y, cudaStream_t stream);

// Bytes of device scratch swiglu_backward() needs.
size_t swiglu_backward_workspace_bytes(DType dtype, int64_t rows, int h);

// dy: (A, d) -> dx: (A, d), overwritten. The pool is shared by every layer of a group, so the
// weight gradients ADD into dw_gate, dw_up: (E, h, d) and dw_down: (E, d, h), fp32.
cudaError_t swiglu_backward(DType dtype, const ExpertShape& s, const int32_t* offsets,
                            const void* x, const void* w_gate, const void* w_up, const void* w_down,
                            const void* g, const void* u, const void* dy, void* workspace, void* dx,
                            float* dw_gate, float* dw_up, float* dw_down, cudaStream_t stream);

// out (T, d) = sum_j gates[t * k + j] * y[slot_row[t * k + j]]; gates null means 1 (the
// un-permute of dx_sorted in backward). Writes every row: no zero fill needed.
cudaError_t combine_forward(DType dtype, int64_t tokens, int k, int d, const void* y,
                            const int32_t* slot_row, const float* gates, void* out,
                            cudaStream_t stream);

// dout: (T, d) -> dy (A, d): dy[r] = gates[a] * dout[a / k] with a = sorted_slot[r], and
// grad_gates (T * k): grad_gates[a] = <dout[a / k], y[r]> (fp32), both overwritten.
cudaError_t combine_backward(DType dtype, int64_t tokens, int k, int d, const void* y,
                             const int32_t* sorted_slot, const float* gates, const void* dout,
                             void* dy, float* grad_gates, cudaStream_t stream);

}  // namespace unipool::kernels
