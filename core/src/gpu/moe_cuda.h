// The MoE kernels (kernels/include/unipool/kernels.h) on LibTorch CUDA tensors: checks device,
// dtype, shape and contiguity at the boundary, takes a device guard, launches on the current
// stream and checks the launch. Only built with UNIPOOL_CUDA. No host synchronisation.
// Index tensors are int32 on the device; activations f32 or bf16; routing and gates f32.
#pragma once

#include <torch/torch.h>

#include <utility>

#include "unipool/kernels.h"

namespace unipool::gpu {

struct Route {
  at::Tensor scores;  // (T, Mg) f32
  at::Tensor top;     // (T, k) int32, learned top-k
  at::Tensor local;   // (T, k) int32, experts used
  at::Tensor gates;   // (T, k) f32
};

// logits: (T, Mg) f32; scale: (1) f32 (NormRouter) or undefined (softmax).
Route route_forward(const at::Tensor& logits, const at::Tensor& scale,
                    const kernels::RouteParams& p);
// grad_gates: (T, k) -> grad logits (T, Mg); adds the scale's gradient into grad_scale (1) f32
// when it is defined.
at::Tensor route_backward(const at::Tensor& logits, const at::Tensor& scale, const Route& fwd,
                          const at::Tensor& grad_gates, const kernels::RouteParams& p,
                          const at::Tensor& grad_scale);

struct Permutation {
  at::Tensor counts, offsets, sorted_slot, slot_row;  // (E), (E + 1), (A), (A) int32
};
Permutation permute(const at::Tensor& expert, int64_t experts);  // expert: (A) int32

at::Tensor gather_rows(const at::Tensor& x, const at::Tensor& sorted_slot, int64_t k);

struct SwigluForward {
  at::Tensor y, g, u;  // (A, d), (A, h), (A, h)
};
// x_sorted: (A, d); offsets (E + 1) int32; w_gate, w_up: (E, h, d); w_down: (E, d, h).
SwigluForward swiglu_forward(const at::Tensor& x_sorted, const at::Tensor& offsets,
                             const at::Tensor& w_gate, const at::Tensor& w_up,
                             const at::Tensor& w_down);
// Returns dx (A, d); ADDS the weight gradients into the f32 buffers dw_* (shapes of w_*).
at::Tensor swiglu_backward(const at::Tensor& dy, const at::Tensor& x_sorted,
                           const at::Tensor& offsets, const at::Tensor& w_gate,
                           const at::Tensor& w_up, const at::Tensor& w_down,
                           const SwigluForward& fwd, at::Tensor& dw_gate, at::Tensor& dw_up,
                           at::Tensor& dw_down);

// y: (A, d); slot_row: (A); gates: (T, k) f32 or undefined (weights 1) -> (T, d).
at::Tensor combine_forward(const at::Tensor& y, const at::Tensor& slot_row, const at::Tensor& gates,
                           int64_t tokens, int64_t k);
// dout: (T, d) -> dy (A, d) and grad gates (T, k) f32.
std::pair<at::Tensor, at::Tensor> combine_backward(const at::Tensor& y,
                                                   const at::Tensor& sorted_slot,
                                                   const at::Tensor& gates, const at::Tensor& dout);

}  // namespace unipool::gpu
