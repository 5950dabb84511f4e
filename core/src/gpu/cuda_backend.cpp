#include "gpu/cuda_backend.h"

#include <torch/torch.h>

#include "gpu/moe_cuda.h"
#include "model/generic_backend.h"

namespace unipool {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// out (T, d) = sum_j gates[t, j] * expert_{ids[t, j]}(x_t), one autograd node: the kernels'
// forward, and their backward (weight gradients accumulated in fp32 by the kernel).
struct KernelMoe : public torch::autograd::Function<KernelMoe> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& gates,
                            const at::Tensor& w_gate, const at::Tensor& w_up,
                            const at::Tensor& w_down, const at::Tensor& ids) {
    const int64_t T = x.size(0), k = ids.size(1), E = w_gate.size(0);
    const gpu::Permutation p = gpu::permute(ids.reshape({-1}).to(at::kInt).contiguous(), E);
    const at::Tensor xs = gpu::gather_rows(x.contiguous(), p.sorted_slot, k);  // (A, d)
    const gpu::SwigluForward f = gpu::swiglu_forward(xs, p.offsets, w_gate.contiguous(),
                                                     w_up.contiguous(), w_down.contiguous());
    const at::Tensor g32 = gates.to(at::kFloat).contiguous();
    const at::Tensor out = gpu::combine_forward(f.y, p.slot_row, g32, T, k);
    ctx->save_for_backward(
        {xs, g32, w_gate, w_up, w_down, f.y, f.g, f.u, p.offsets, p.sorted_slot, p.slot_row});
    ctx->saved_data["tokens"] = T;
    ctx->saved_data["k"] = k;
    return out.to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &xs = s[0], &g32 = s[1], &w_gate = s[2], &w_up = s[3], &w_down = s[4];
    const gpu::SwigluForward f{s[5], s[6], s[7]};
    const at::Tensor &offsets = s[8], &sorted_slot = s[9];
    const int64_t T = ctx->saved_data["tokens"].toInt(), k = ctx->saved_data["k"].toInt();
    const at::Tensor dout = grads[0].to(f.y.scalar_type()).contiguous();
    auto [dy, dgates] = gpu::combine_backward(f.y, sorted_slot, g32, dout);
    at::Tensor dw_gate = at::zeros(w_gate.sizes(), w_gate.options().dtype(at::kFloat));
    at::Tensor dw_up = at::zeros(w_up.sizes(), w_up.options().dtype(at::kFloat));
    at::Tensor dw_down = at::zeros(w_down.sizes(), w_down.options().dtype(at::kFloat));
    const at::Tensor dxs =
        gpu::swiglu_backward(dy, xs, offsets, w_gate, w_up, w_down, f, dw_gate, dw_up, dw_down);
    // Each sorted row came from token sorted_slot / k: its gradient goes back there.
    const at::Tensor token = at::floor_divide(sorted_slot.to(at::kLong), k);
    at::Tensor dx = at::zeros({T, xs.size(1)}, dxs.options()).index_add_(0, token, dxs);
    return {dx,
            dgates,
            dw_gate.to(w_gate.scalar_type()),
            dw_up.to(w_up.scalar_type()),
            dw_down.to(w_down.scalar_type()),
            at::Tensor()};
  }
};

class CudaKernelsBackend final : public GenericBackend {
 public:
  using GenericBackend::GenericBackend;
  BackendKind kind() const override { return BackendKind::CudaKernels; }
  at::Tensor moe(const at::Tensor& x, const at::Tensor& ids, const at::Tensor& gates,
                 const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down,
                 bool) const override {
    if (!bf16_) return KernelMoe::apply(x, gates, w_gate, w_up, w_down, ids);
    const at::Tensor y = KernelMoe::apply(x.to(at::kBFloat16), gates, w_gate.to(at::kBFloat16),
                                          w_up.to(at::kBFloat16), w_down.to(at::kBFloat16), ids);
    return y.to(x.scalar_type());
  }
};

}  // namespace

std::shared_ptr<const StepBackend> make_cuda_kernels_backend(bool bf16) {
  return std::make_shared<CudaKernelsBackend>(bf16);
}

}  // namespace unipool
