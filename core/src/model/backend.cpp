#include "model/backend.h"

#include <ATen/detail/CUDAHooksInterface.h>

#include <stdexcept>

#include "model/attention.h"
#include "model/experts.h"
#include "model/generic_backend.h"
#include "model/linear.h"
#include "model/norm_router.h"
#include "model/rms_norm.h"
#include "model/rope.h"
#include "model/router.h"

namespace unipool {

namespace {

class FusedCpuBackend final : public StepBackend {
 public:
  BackendKind kind() const override { return BackendKind::FusedCpu; }
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) const override {
    return unipool::rms_norm(x, w, eps);
  }
  at::Tensor rope_grouped(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                          int64_t group) const override {
    return unipool::rope_grouped(x, cos, sin, group);
  }
  at::Tensor attention_grouped(const at::Tensor& q, const at::Tensor& k,
                               const at::Tensor& v) const override {
    return causal_gqa_attention_grouped(q, k, v);
  }
  at::Tensor norm_router_scores(const at::Tensor& z, const at::Tensor& scale, double c,
                                const at::Tensor& cols) const override {
    return unipool::norm_router_scores(z, scale, c, cols);
  }
  at::Tensor top_k(const at::Tensor& scores, int k) const override {
    return top_k_lowest_index(scores, k);
  }
  at::Tensor moe(const at::Tensor& x, const at::Tensor& ids, const at::Tensor& gates,
                 const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down,
                 bool accumulate) const override {
    return dispatch_experts(x, ids, gates, w_gate, w_up, w_down, accumulate);
  }
  at::Tensor linear(const at::Tensor& x, const at::Tensor& w) const override {
    return linear_rows(x, w);
  }
  bool fused_optimizer() const override { return true; }
};

}  // namespace

std::string backend_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::FusedCpu:
      return "fused-cpu";
    case BackendKind::Generic:
      return "generic";
    case BackendKind::CudaKernels:
      return "cuda-kernels";
  }
  return "?";
}

const StepBackend& fused_cpu_backend() {
  static const FusedCpuBackend backend;
  return backend;
}

std::shared_ptr<const StepBackend> generic_backend(bool bf16) {
  return std::make_shared<GenericBackend>(bf16);
}

bool cuda_available(std::string* why) {
  std::string reason;
  if (!at::hasCUDA())
    reason =
        "this build's LibTorch has no CUDA (Debian's libtorch is CPU-only; build against a "
        "CUDA LibTorch, see docs/gpu-results.md)";
  else if (at::detail::getCUDAHooks().getNumGPUs() == 0)
    reason = "no GPU is visible to this process";
  if (why) *why = reason;
  return reason.empty();
}

std::shared_ptr<const StepBackend> choose_backend(const ComputeOptions& choice) {
  if (choice.device != "cpu" && choice.device != "cuda")
    throw std::invalid_argument("device '" + choice.device + "': expected cpu or cuda");
  std::string why;
  if (choice.device == "cuda" && !cuda_available(&why))
    throw std::invalid_argument("device cuda: " + why);
  if (choice.bf16 && choice.device != "cuda")
    throw std::invalid_argument("bf16 runs on the GPU only (device cuda)");
  const std::string& b = choice.backend;
  if (b == "fused" || (b == "auto" && choice.device == "cpu")) {
    if (choice.device != "cpu")
      throw std::invalid_argument("the fused backend is the CPU's: use generic on cuda");
    return std::shared_ptr<const StepBackend>(&fused_cpu_backend(), [](const StepBackend*) {});
  }
  if (b == "generic" || b == "auto") return std::make_shared<GenericBackend>(choice.bf16);
  if (b == "cuda-kernels") {
    if (choice.device != "cuda")
      throw std::invalid_argument("backend cuda-kernels runs on device cuda only");
#ifdef UNIPOOL_HAVE_CUDA_KERNELS
    return make_cuda_kernels_backend(choice.bf16);
#else
    throw std::invalid_argument(
        "backend cuda-kernels: this build has no CUDA kernels (configure with a CUDA LibTorch "
        "and nvcc: UNIPOOL_CUDA)");
#endif
  }
  throw std::invalid_argument("backend '" + b + "': expected auto, fused, generic or cuda-kernels");
}

}  // namespace unipool
