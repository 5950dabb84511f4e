// The step's operators behind one seam. The forward pass (model/transformer.cpp) and the
// optimizer step (training/train_step.cpp) call these, never a particular implementation:
//   FusedCpu    today's hand-written CPU operators (cpu_kernels/, fused forward and backward);
//   Generic     LibTorch ops only, autograd for every backward: runs on any device and dtype,
//               and is the reference the others are tested against on CPU;
//   CudaKernels Generic, with the MoE block's routing, permutation and grouped SwiGLU in the
//               CUDA kernels (kernels/, core/src/gpu/) where UNIPOOL_CUDA built them.
// choose_backend() is the one place that decides, from the device and the user's choice.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "unipool/engine.h"

namespace unipool {

enum class BackendKind { FusedCpu, Generic, CudaKernels };
std::string backend_name(BackendKind kind);  // "fused-cpu", "generic", "cuda-kernels"

class StepBackend {
 public:
  virtual ~StepBackend() = default;
  virtual BackendKind kind() const = 0;
  // x: (..., d), weight: (d) -> (..., d)
  virtual at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) const = 0;
  // x: (B, S, heads, hd), cos, sin: (S, hd) -> (B, heads/group, S, group, hd)
  virtual at::Tensor rope_grouped(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  int64_t group) const = 0;
  // q: (B, KV, S, rep, hd), k, v: (B, KV, S, hd) -> (B, KV, S, rep, hd), causal
  virtual at::Tensor attention_grouped(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v) const = 0;
  // NormRouter: z (T, M) -> scale * c * relu(z / (||z|| + 1e-8)), columns `cols` (K) when
  // defined (a locked layer), all M otherwise; the norm always covers all M (SPEC 8.4).
  virtual at::Tensor norm_router_scores(const at::Tensor& z, const at::Tensor& scale, double c,
                                        const at::Tensor& cols) const = 0;
  // (T, M) scores -> (T, k) int64 column ids, largest first, ties to the lower index.
  virtual at::Tensor top_k(const at::Tensor& scores, int k) const = 0;
  // The MoE block after routing: x (T, d), global ids (T, k), gates (T, k) and the pool
  // tensors (N, h, d), (N, h, d), (N, d, h) -> (T, d). With accumulate_pool_grads the fused
  // backend adds the pool's gradient straight into .grad (see experts.h); others use autograd.
  virtual at::Tensor moe(const at::Tensor& x, const at::Tensor& global_ids, const at::Tensor& gates,
                         const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down,
                         bool accumulate_pool_grads) const = 0;
  // Matrix products of activations with weights: bf16 inputs and fp32 results when the
  // backend runs in bf16 (autocast-style; weights, optimizer and losses stay fp32).
  virtual at::Tensor linear(const at::Tensor& x, const at::Tensor& weight) const = 0;
  // Sum of squares of every gradient (double), and AdamW's fused update are the optimizer's:
  // the fused backend loops on the CPU, the others use tensor ops on the parameters' device.
  virtual bool fused_optimizer() const = 0;
};

// Throws std::invalid_argument with the reason for a choice this build or machine cannot run
// (CUDA without a CUDA LibTorch or GPU, fused on CUDA, bf16 on the CPU, ...).
std::shared_ptr<const StepBackend> choose_backend(const ComputeOptions& choice);
// The fused CPU backend (the default of every engine).
const StepBackend& fused_cpu_backend();
// The generic backend with bf16 products on any device (choose_backend allows bf16 on CUDA
// only; the tests check its numbers on the CPU).
std::shared_ptr<const StepBackend> generic_backend(bool bf16);
// The CUDA kernels' backend: defined in gpu/cuda_backend.cpp, which only CUDA builds compile
// (UNIPOOL_HAVE_CUDA_KERNELS); declared here so that model/ never includes gpu/ (gpu/ builds
// on model/, not the other way round).
std::shared_ptr<const StepBackend> make_cuda_kernels_backend(bool bf16);

}  // namespace unipool
