// LibTorch glue of the MoE kernels; see moe_cuda.h. Compiled only with UNIPOOL_CUDA (a CUDA
// LibTorch): it has not been compiled on the machine that wrote it (CPU LibTorch only).
#include "gpu/moe_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

namespace unipool::gpu {

namespace {

namespace kern = unipool::kernels;

void check_tensor(const at::Tensor& t, const char* name,
                  std::initializer_list<at::ScalarType> types, int64_t dims) {
  TORCH_CHECK(t.defined(), name, " is undefined");
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.dim() == dims, name, " must have ", dims, " dimensions, has ", t.dim());
  bool ok = false;
  for (at::ScalarType s : types) ok = ok || t.scalar_type() == s;
  TORCH_CHECK(ok, name, " has an unsupported dtype ", t.scalar_type());
}

kern::DType dtype_of(const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16,
              "MoE kernels take float32 or bfloat16, got ", t.scalar_type());
  return t.scalar_type() == at::kFloat ? kern::DType::F32 : kern::DType::BF16;
}

cudaStream_t stream() { return at::cuda::getCurrentCUDAStream().stream(); }

at::TensorOptions int32_on(const at::Tensor& like) { return like.options().dtype(at::kInt); }

}  // namespace

Route route_forward(const at::Tensor& logits, const at::Tensor& scale,
                    const kernels::RouteParams& p) {
  check_tensor(logits, "logits", {at::kFloat}, 2);
  TORCH_CHECK(logits.size(0) == p.tokens && logits.size(1) == p.experts, "logits: (T, Mg)");
  if (p.router == kern::Router::Norm) check_tensor(scale, "scale", {at::kFloat}, 1);
  const c10::cuda::CUDAGuard guard(logits.device());
  Route r;
  r.scores = at::empty_like(logits);
  r.top = at::empty({p.tokens, p.top_k}, int32_on(logits));
  r.local = at::empty({p.tokens, p.top_k}, int32_on(logits));
  r.gates = at::empty({p.tokens, p.top_k}, logits.options());
  const float* sp = p.router == kern::Router::Norm ? scale.data_ptr<float>() : nullptr;
  C10_CUDA_CHECK(kern::route_forward(p, logits.data_ptr<float>(), sp, r.scores.data_ptr<float>(),
                                     r.top.data_ptr<int32_t>(), r.local.data_ptr<int32_t>(),
                                     r.gates.data_ptr<float>(), stream()));
  return r;
}

at::Tensor route_backward(const at::Tensor& logits, const at::Tensor& scale, const Route& fwd,
                          const at::Tensor& grad_gates_in, const kernels::RouteParams& p,
                          const at::Tensor& grad_scale) {
  check_tensor(logits, "logits", {at::kFloat}, 2);
  const at::Tensor grad_gates = grad_gates_in.contiguous();
  check_tensor(grad_gates, "grad_gates", {at::kFloat}, 2);
  const bool norm = p.router == kern::Router::Norm;
  if (norm) check_tensor(scale, "scale", {at::kFloat}, 1);
  if (grad_scale.defined()) check_tensor(grad_scale, "grad_scale", {at::kFloat}, 1);
  const c10::cuda::CUDAGuard guard(logits.device());
  at::Tensor grad_logits = at::empty_like(logits);
  C10_CUDA_CHECK(kern::route_backward(
      p, logits.data_ptr<float>(), norm ? scale.data_ptr<float>() : nullptr,
      fwd.scores.data_ptr<float>(), fwd.top.data_ptr<int32_t>(), grad_gates.data_ptr<float>(),
      grad_logits.data_ptr<float>(),
      norm && grad_scale.defined() ? grad_scale.data_ptr<float>() : nullptr, stream()));
  return grad_logits;
}

Permutation permute(const at::Tensor& expert, int64_t experts) {
  check_tensor(expert, "expert", {at::kInt}, 1);
  const c10::cuda::CUDAGuard guard(expert.device());
  const int64_t A = expert.numel();
  Permutation p;
  p.counts = at::empty({experts}, int32_on(expert));
  p.offsets = at::empty({experts + 1}, int32_on(expert));
  p.sorted_slot = at::empty({A}, int32_on(expert));
  p.slot_row = at::empty({A}, int32_on(expert));
  const size_t ws_bytes = kern::permute_workspace_bytes(A, int(experts));
  at::Tensor ws = at::empty({int64_t(ws_bytes)}, expert.options().dtype(at::kByte));
  C10_CUDA_CHECK(kern::permute(expert.data_ptr<int32_t>(), A, int(experts), ws.data_ptr(),
                               p.counts.data_ptr<int32_t>(), p.offsets.data_ptr<int32_t>(),
                               p.sorted_slot.data_ptr<int32_t>(), p.slot_row.data_ptr<int32_t>(),
                               stream()));
  return p;
}

at::Tensor gather_rows(const at::Tensor& x, const at::Tensor& sorted_slot, int64_t k) {
  check_tensor(x, "x", {at::kFloat, at::kBFloat16}, 2);
  check_tensor(sorted_slot, "sorted_slot", {at::kInt}, 1);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty({sorted_slot.numel(), x.size(1)}, x.options());
  C10_CUDA_CHECK(kern::gather_rows(dtype_of(x), sorted_slot.numel(), int(k), int(x.size(1)),
                                   x.data_ptr(), sorted_slot.data_ptr<int32_t>(), out.data_ptr(),
                                   stream()));
  return out;
}

SwigluForward swiglu_forward(const at::Tensor& x, const at::Tensor& offsets,
                             const at::Tensor& w_gate, const at::Tensor& w_up,
                             const at::Tensor& w_down) {
  check_tensor(x, "x_sorted", {at::kFloat, at::kBFloat16}, 2);
  for (const auto* w : {&w_gate, &w_up, &w_down}) {
    check_tensor(*w, "expert weight", {x.scalar_type()}, 3);
  }
  check_tensor(offsets, "offsets", {at::kInt}, 1);
  const int64_t E = w_gate.size(0), h = w_gate.size(1), d = w_gate.size(2);
  TORCH_CHECK(x.size(1) == d && w_up.sizes() == w_gate.sizes() && w_down.size(0) == E &&
                  w_down.size(1) == d && w_down.size(2) == h && offsets.numel() == E + 1,
              "swiglu_forward: shapes disagree");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t A = x.size(0);
  SwigluForward f;
  f.g = at::empty({A, h}, x.options());
  f.u = at::empty({A, h}, x.options());
  f.y = at::empty({A, d}, x.options());
  at::Tensor act = at::empty({A, h}, x.options());
  const kern::ExpertShape s{A, int(E), int(d), int(h)};
  C10_CUDA_CHECK(kern::swiglu_forward(
      dtype_of(x), s, offsets.data_ptr<int32_t>(), x.data_ptr(), w_gate.data_ptr(), w_up.data_ptr(),
      w_down.data_ptr(), f.g.data_ptr(), f.u.data_ptr(), act.data_ptr(), f.y.data_ptr(), stream()));
  return f;
}

at::Tensor swiglu_backward(const at::Tensor& dy_in, const at::Tensor& x, const at::Tensor& offsets,
                           const at::Tensor& w_gate, const at::Tensor& w_up,
                           const at::Tensor& w_down, const SwigluForward& fwd, at::Tensor& dw_gate,
                           at::Tensor& dw_up, at::Tensor& dw_down) {
  const at::Tensor dy = dy_in.contiguous();
  check_tensor(dy, "dy", {x.scalar_type()}, 2);
  check_tensor(dw_gate, "dw_gate", {at::kFloat}, 3);
  check_tensor(dw_up, "dw_up", {at::kFloat}, 3);
  check_tensor(dw_down, "dw_down", {at::kFloat}, 3);
  TORCH_CHECK(dw_gate.sizes() == w_gate.sizes() && dw_up.sizes() == w_up.sizes() &&
                  dw_down.sizes() == w_down.sizes() && dy.sizes() == x.sizes(),
              "swiglu_backward: shapes disagree");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t A = x.size(0), E = w_gate.size(0), h = w_gate.size(1), d = w_gate.size(2);
  const kern::DType dt = dtype_of(x);
  at::Tensor ws = at::empty({int64_t(kern::swiglu_backward_workspace_bytes(dt, A, int(h)))},
                            x.options().dtype(at::kByte));
  at::Tensor dx = at::empty_like(x);
  const kern::ExpertShape s{A, int(E), int(d), int(h)};
  C10_CUDA_CHECK(
      kern::swiglu_backward(dt, s, offsets.data_ptr<int32_t>(), x.data_ptr(), w_gate.data_ptr(),
                            w_up.data_ptr(), w_down.data_ptr(), fwd.g.data_ptr(), fwd.u.data_ptr(),
                            dy.data_ptr(), ws.data_ptr(), dx.data_ptr(), dw_gate.data_ptr<float>(),
                            dw_up.data_ptr<float>(), dw_down.data_ptr<float>(), stream()));
  return dx;
}

at::Tensor combine_forward(const at::Tensor& y, const at::Tensor& slot_row, const at::Tensor& gates,
                           int64_t tokens, int64_t k) {
  check_tensor(y, "y", {at::kFloat, at::kBFloat16}, 2);
  check_tensor(slot_row, "slot_row", {at::kInt}, 1);
  TORCH_CHECK(slot_row.numel() == tokens * k && y.size(0) == tokens * k, "combine: A = T * k");
  if (gates.defined()) check_tensor(gates, "gates", {at::kFloat}, 2);
  const c10::cuda::CUDAGuard guard(y.device());
  at::Tensor out = at::empty({tokens, y.size(1)}, y.options());
  C10_CUDA_CHECK(kern::combine_forward(
      dtype_of(y), tokens, int(k), int(y.size(1)), y.data_ptr(), slot_row.data_ptr<int32_t>(),
      gates.defined() ? gates.data_ptr<float>() : nullptr, out.data_ptr(), stream()));
  return out;
}

std::pair<at::Tensor, at::Tensor> combine_backward(const at::Tensor& y,
                                                   const at::Tensor& sorted_slot,
                                                   const at::Tensor& gates,
                                                   const at::Tensor& dout_in) {
  const at::Tensor dout = dout_in.contiguous();
  check_tensor(y, "y", {at::kFloat, at::kBFloat16}, 2);
  check_tensor(dout, "dout", {y.scalar_type()}, 2);
  check_tensor(gates, "gates", {at::kFloat}, 2);
  check_tensor(sorted_slot, "sorted_slot", {at::kInt}, 1);
  const int64_t T = gates.size(0), k = gates.size(1);
  TORCH_CHECK(y.size(0) == T * k && dout.size(0) == T && dout.size(1) == y.size(1),
              "combine_backward: shapes disagree");
  const c10::cuda::CUDAGuard guard(y.device());
  at::Tensor dy = at::empty_like(y);
  at::Tensor grad_gates = at::empty_like(gates);
  C10_CUDA_CHECK(kern::combine_backward(dtype_of(y), T, int(k), int(y.size(1)), y.data_ptr(),
                                        sorted_slot.data_ptr<int32_t>(), gates.data_ptr<float>(),
                                        dout.data_ptr(), dy.data_ptr(),
                                        grad_gates.data_ptr<float>(), stream()));
  return {dy, grad_gates};
}

}  // namespace unipool::gpu
