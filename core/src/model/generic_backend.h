// The generic backend (model/backend.h): LibTorch ops only, autograd for every backward, any
// device; bf16 products when asked. The CUDA-kernels backend (gpu/cuda_backend.cpp) derives
// from it and replaces the MoE block. Private to core/.
#pragma once

#include <cmath>
#include <limits>

#include "model/moe_reference.h"
#include "model/backend.h"

namespace unipool {

// LibTorch ops only: the same formulas as the fused operators, with autograd's backward.
class GenericBackend : public StepBackend {
 public:
  explicit GenericBackend(bool bf16) : bf16_(bf16) {}
  BackendKind kind() const override { return BackendKind::Generic; }
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) const override {
    return x * at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * w;
  }
  at::Tensor rope_grouped(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                          int64_t group) const override {
    // rotate-half: y1 = x1 c - x2 s, y2 = x2 c + x1 s; the tables repeat over both halves.
    const int64_t B = x.size(0), S = x.size(1), nh = x.size(2), hd = x.size(3), half = hd / 2;
    const at::Tensor c = cos.view({1, S, 1, hd}), s = sin.view({1, S, 1, hd});
    const at::Tensor rotated = at::cat({-x.narrow(3, half, half), x.narrow(3, 0, half)}, 3);
    const at::Tensor y = x * c + rotated * s;  // (B, S, nh, hd)
    return y.view({B, S, nh / group, group, hd}).permute({0, 2, 1, 3, 4}).contiguous();
  }
  at::Tensor attention_grouped(const at::Tensor& q, const at::Tensor& k,
                               const at::Tensor& v) const override {
    const int64_t S = q.size(2), hd = q.size(4);
    const at::Tensor qh = q.permute({0, 1, 3, 2, 4});  // (B, KV, rep, S, hd)
    at::Tensor scores = matmul(qh, k.unsqueeze(2).transpose(-1, -2)) / std::sqrt(double(hd));
    const at::Tensor future = at::ones({S, S}, q.options().dtype(at::kBool)).triu(1);
    scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
    const at::Tensor p = at::softmax(scores.to(at::kFloat), -1).to(scores.scalar_type());
    return matmul(p, v.unsqueeze(2)).permute({0, 1, 3, 2, 4});  // (B, KV, S, rep, hd)
  }
  at::Tensor norm_router_scores(const at::Tensor& z, const at::Tensor& scale, double c,
                                const at::Tensor& cols) const override {
    const at::Tensor u = z / (z.norm(2, 1, /*keepdim=*/true) + 1e-8);  // paper Eq. 7
    const at::Tensor s = at::relu(u) * (scale * c);
    return cols.defined() ? s.index_select(1, cols.to(z.device())) : s;
  }
  at::Tensor top_k(const at::Tensor& scores, int k) const override {
    // A stable descending sort keeps equal scores in index order: ties to the lower index.
    const at::Tensor order =
        std::get<1>(at::sort(scores.detach(), /*stable=*/true, /*dim=*/1, /*descending=*/true));
    return order.narrow(1, 0, k).contiguous();
  }
  at::Tensor moe(const at::Tensor& x, const at::Tensor& ids, const at::Tensor& gates,
                 const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down,
                 bool) const override {
    if (!bf16_) return moe_ref::moe_block(x, ids, gates, w_gate, w_up, w_down);
    const at::Tensor y = moe_ref::moe_block(x.to(at::kBFloat16), ids, gates.to(at::kBFloat16),
                                            w_gate.to(at::kBFloat16), w_up.to(at::kBFloat16),
                                            w_down.to(at::kBFloat16));
    return y.to(x.scalar_type());
  }
  at::Tensor linear(const at::Tensor& x, const at::Tensor& w) const override {
    if (!bf16_) return at::mm(x, w.t());
    return at::mm(x.to(at::kBFloat16), w.to(at::kBFloat16).t()).to(x.scalar_type());
  }
  bool fused_optimizer() const override { return false; }

 protected:
  at::Tensor matmul(const at::Tensor& a, const at::Tensor& b) const {
    if (!bf16_) return at::matmul(a, b);
    return at::matmul(a.to(at::kBFloat16), b.to(at::kBFloat16)).to(a.scalar_type());
  }
  bool bf16_;
};

}  // namespace unipool
