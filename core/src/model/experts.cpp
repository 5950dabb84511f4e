// SwiGLU experts over expert-grouped token rows, forward and backward by hand.
//
// Rows [o_e, o_e + counts[e]) of an (A, d) matrix belong to global expert e. Each expert is
// three GEMMs forward and six backward on its own rows; the activation silu(g) * u is
// recomputed in backward from the saved projections g, u: (A, h) rather than stored.
// moe_experts() adds the gather of token rows before and the gate-weighted combine after, so
// one autograd node does the whole MoE block with no zero-filled (T, d) temporaries.
#include "model/experts.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "cpu_kernels/cpu_kernels.h"
#include "model/blas_gemm.h"
#include "model/parallel_work.h"

namespace unipool {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t v) {
  return scalar_t(1) / (scalar_t(1) + std::exp(-v));
}

// On one expert's rows: g, u, act are row ranges of contiguous (A, h) tensors.
void swiglu_forward(const at::Tensor& g, const at::Tensor& u, at::Tensor& act) {
  if (g.scalar_type() == at::kFloat) {
    cpu::silu_mul(g.data_ptr<float>(), u.data_ptr<float>(), act.data_ptr<float>(), g.numel());
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "swiglu_fwd", [&] {
    const scalar_t *gp = g.data_ptr<scalar_t>(), *up = u.data_ptr<scalar_t>();
    scalar_t* ap = act.data_ptr<scalar_t>();
    for (int64_t i = 0; i < g.numel(); ++i) ap[i] = gp[i] * sigmoid(gp[i]) * up[i];
  });
}

// d(silu(g) * u): dg = da * u * sig * (1 + g * (1 - sig)), du = da * silu(g). Overwrites g, u.
void swiglu_backward_inplace(const at::Tensor& da, at::Tensor& g, at::Tensor& u) {
  if (g.scalar_type() == at::kFloat) {
    cpu::silu_mul_backward(da.data_ptr<float>(), g.data_ptr<float>(), u.data_ptr<float>(),
                           g.numel());
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "swiglu_bwd", [&] {
    const scalar_t* dap = da.data_ptr<scalar_t>();
    scalar_t *gp = g.data_ptr<scalar_t>(), *up = u.data_ptr<scalar_t>();
    for (int64_t i = 0; i < g.numel(); ++i) {
      const scalar_t gv = gp[i], uv = up[i], s = sigmoid(gv);
      gp[i] = dap[i] * uv * s * (scalar_t(1) + gv * (scalar_t(1) - s));
      up[i] = dap[i] * gv * s;
    }
  });
}

// Calls fn(e, offset, count) for every expert with rows, the experts shared among the compute
// threads (model/parallel_work.h): an expert's rows, its GEMMs and its weight gradients
// belong to it alone, so the result is the same whichever thread runs which expert.
template <typename Fn>
void for_each_expert(const std::vector<int64_t>& counts, Fn fn) {
  std::vector<int64_t> experts, offsets;
  int64_t offset = 0;
  for (size_t e = 0; e < counts.size(); ++e) {
    if (counts[e] == 0) continue;
    experts.push_back(int64_t(e));
    offsets.push_back(offset);
    offset += counts[e];
  }
  parallel_items(
      int64_t(experts.size()), [&](int64_t i) { return counts[size_t(experts[size_t(i)])]; },
      [&](int64_t i) {
        const int64_t e = experts[size_t(i)];
        fn(e, offsets[size_t(i)], counts[size_t(e)]);
      });
}

// Columns per task in the combine loops: a cache line's worth of several rows' floats.
constexpr int64_t kColumnGrain = 32;

struct ExpertWeights {
  at::Tensor gate, up, down;  // (N, h, d), (N, h, d), (N, d, h)
};

// x: (A, d) -> y: (A, d); fills g, u: (A, h). Each expert's chain (gate and up GEMMs, SwiGLU,
// down GEMM) runs on its own rows.
at::Tensor experts_forward(const at::Tensor& x, const std::vector<int64_t>& counts,
                           const ExpertWeights& w, at::Tensor& g, at::Tensor& u) {
  const int64_t A = x.size(0), h = w.gate.size(1), d = w.gate.size(2);
  g = at::empty({A, h}, x.options());
  u = at::empty({A, h}, x.options());
  at::Tensor act = at::empty({A, h}, x.options());
  at::Tensor y = at::empty({A, d}, x.options());
  for_each_expert(counts, [&](int64_t e, int64_t o, int64_t c) {
    const at::Tensor xe = x.narrow(0, o, c), ge = g.narrow(0, o, c), ue = u.narrow(0, o, c);
    at::Tensor ae = act.narrow(0, o, c);
    gemm_into(ge, xe, w.gate[e].t(), 0.0f);
    gemm_into(ue, xe, w.up[e].t(), 0.0f);
    swiglu_forward(ge, ue, ae);
    gemm_into(y.narrow(0, o, c), ae, w.down[e].t(), 0.0f);
  });
  return y;
}

// dy: (A, d) -> dx: (A, d). Adds the weight gradients into dw (same shapes as w).
// g and u are consumed (overwritten).
at::Tensor experts_backward(const at::Tensor& dy, const at::Tensor& x,
                            const std::vector<int64_t>& counts, const ExpertWeights& w,
                            at::Tensor& g, at::Tensor& u, ExpertWeights& dw) {
  const int64_t A = x.size(0), h = w.gate.size(1);
  at::Tensor act = at::empty({A, h}, x.options());
  at::Tensor da = at::empty({A, h}, x.options());
  at::Tensor dx = at::empty_like(x);
  for_each_expert(counts, [&](int64_t e, int64_t o, int64_t c) {
    const at::Tensor xe = x.narrow(0, o, c), dye = dy.narrow(0, o, c);
    at::Tensor ge = g.narrow(0, o, c), ue = u.narrow(0, o, c);
    at::Tensor ae = act.narrow(0, o, c), dae = da.narrow(0, o, c);
    swiglu_forward(ge, ue, ae);                       // the activation, recomputed
    gemm_into(dae, dye, w.down[e], 0.0f);             // (c, h)
    gemm_into(dw.down[e], dye.t(), ae, 1.0f);         // (d, h)
    swiglu_backward_inplace(dae, ge, ue);             // g <- d(gate proj.), u <- d(up proj.)
    gemm_into(dw.gate[e], ge.t(), xe, 1.0f);          // (h, d)
    gemm_into(dw.up[e], ue.t(), xe, 1.0f);
    gemm_into(dx.narrow(0, o, c), ge, w.gate[e], 0.0f);  // (c, d)
    gemm_into(dx.narrow(0, o, c), ue, w.up[e], 1.0f);
  });
  return dx;
}

// The weight-gradient buffers. Accumulating mode (training): the pool is shared by every
// layer, so rather than each layer returning zero-filled (N, h, d) gradients for autograd to
// add up, every layer adds straight into the leaves' one .grad (zeroed once per step).
ExpertWeights gradient_buffers(AutogradContext* ctx, const ExpertWeights& w) {
  if (!ctx->saved_data.count("leaves")) {
    return {at::zeros_like(w.gate), at::zeros_like(w.up), at::zeros_like(w.down)};
  }
  const auto leaves = ctx->saved_data["leaves"].toTensorList();
  at::Tensor out[3];
  for (size_t i = 0; i < 3; ++i) {
    const at::Tensor leaf = leaves.get(i);
    at::Tensor& grad = leaf.mutable_grad();
    if (!grad.defined()) grad = at::zeros_like(leaf);
    out[i] = grad;
  }
  return {out[0], out[1], out[2]};
}

void save_weights(AutogradContext* ctx, const ExpertWeights& w, bool accumulate) {
  if (accumulate) ctx->saved_data["leaves"] = std::vector<at::Tensor>{w.gate, w.up, w.down};
}

variable_list weight_grads(AutogradContext* ctx, const ExpertWeights& dw) {
  if (ctx->saved_data.count("leaves")) return {at::Tensor(), at::Tensor(), at::Tensor()};
  return {dw.gate, dw.up, dw.down};
}

struct PoolExpertsFn : public torch::autograd::Function<PoolExpertsFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_gate,
                            const at::Tensor& w_up, const at::Tensor& w_down,
                            std::vector<int64_t> counts, bool accumulate) {
    const at::Tensor x = x_in.contiguous();
    const ExpertWeights w{w_gate, w_up, w_down};
    at::Tensor g, u;
    at::Tensor y = experts_forward(x, counts, w, g, u);
    ctx->save_for_backward({x, w_gate, w_up, w_down, g, u});
    ctx->saved_data["counts"] = counts;
    save_weights(ctx, w, accumulate);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const ExpertWeights w{s[1], s[2], s[3]};
    at::Tensor g = s[4], u = s[5];  // this node's own buffers; backward runs once
    ExpertWeights dw = gradient_buffers(ctx, w);
    const at::Tensor dx = experts_backward(grads[0].contiguous(), s[0],
                                           ctx->saved_data["counts"].toIntVector(), w, g, u, dw);
    variable_list out = {dx};
    for (auto& t : weight_grads(ctx, dw)) out.push_back(t);
    out.push_back(at::Tensor());
    out.push_back(at::Tensor());
    return out;
  }
};

// Gather -> experts -> gate-weighted combine. token: (A) int64, the token of each sorted row;
// gates: (A) the gate of each sorted row. With top_k = 1 every token is one row, so the
// combine and its backward write each output row once and need no zero fill.
struct MoeExpertsFn : public torch::autograd::Function<MoeExpertsFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& gates,
                            const at::Tensor& w_gate, const at::Tensor& w_up,
                            const at::Tensor& w_down, const at::Tensor& token,
                            std::vector<int64_t> counts, int64_t top_k, bool accumulate) {
    const at::Tensor x = x_in.contiguous();
    const ExpertWeights w{w_gate, w_up, w_down};
    const at::Tensor x_sorted = x.index_select(0, token);  // (A, d)
    at::Tensor g, u;
    const at::Tensor y = experts_forward(x_sorted, counts, w, g, u);  // (A, d)
    at::Tensor out = top_k == 1 ? at::empty_like(x) : at::zeros_like(x);
    const int64_t A = y.size(0), d = y.size(1);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "moe_combine", [&] {
      const scalar_t *yp = y.data_ptr<scalar_t>(), *gp = gates.contiguous().data_ptr<scalar_t>();
      const int64_t* tp = token.data_ptr<int64_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      // Columns on the compute threads: with top_k > 1 several rows add into one token's row,
      // always in row order, whatever the thread count.
      at::parallel_for(0, d, kColumnGrain, [&](int64_t c0, int64_t c1) {
        for (int64_t a = 0; a < A; ++a) {
          scalar_t* row = op + tp[a] * d;
          const scalar_t* src = yp + a * d;
          const scalar_t gate = gp[a];
          if (top_k == 1) {
            for (int64_t i = c0; i < c1; ++i) row[i] = gate * src[i];
          } else {
            for (int64_t i = c0; i < c1; ++i) row[i] += gate * src[i];
          }
        }
      });
    });
    ctx->save_for_backward({x_sorted, y, gates.contiguous(), token, w_gate, w_up, w_down, g, u});
    ctx->saved_data["counts"] = counts;
    ctx->saved_data["top_k"] = top_k;
    ctx->saved_data["tokens"] = x.size(0);
    save_weights(ctx, w, accumulate);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &x_sorted = s[0], &y = s[1], &gates = s[2], &token = s[3];
    const ExpertWeights w{s[4], s[5], s[6]};
    at::Tensor g = s[7], u = s[8];
    const int64_t top_k = ctx->saved_data["top_k"].toInt(), T = ctx->saved_data["tokens"].toInt();
    const at::Tensor dout = grads[0].contiguous();  // (T, d)
    const int64_t A = y.size(0), d = y.size(1);
    at::Tensor dy = at::empty_like(y);          // (A, d) = dout[token] * gate
    at::Tensor dgates = at::empty_like(gates);  // (A)    = <dout[token], y>
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "moe_combine_bwd", [&] {
      const scalar_t *dop = dout.data_ptr<scalar_t>(), *yp = y.data_ptr<scalar_t>();
      const scalar_t* gp = gates.data_ptr<scalar_t>();
      const int64_t* tp = token.data_ptr<int64_t>();
      scalar_t *dyp = dy.data_ptr<scalar_t>(), *dgp = dgates.data_ptr<scalar_t>();
      at::parallel_for(0, A, 64, [&](int64_t begin, int64_t end) {  // rows are independent
        for (int64_t a = begin; a < end; ++a) {
          const scalar_t* grad_row = dop + tp[a] * d;
          const scalar_t* y_row = yp + a * d;
          scalar_t* dy_row = dyp + a * d;
          scalar_t dot = 0;
          for (int64_t i = 0; i < d; ++i) {
            dy_row[i] = grad_row[i] * gp[a];
            dot += grad_row[i] * y_row[i];
          }
          dgp[a] = dot;
        }
      });
    });
    ExpertWeights dw = gradient_buffers(ctx, w);
    const at::Tensor dx_sorted =
        experts_backward(dy, x_sorted, ctx->saved_data["counts"].toIntVector(), w, g, u, dw);
    at::Tensor dx = top_k == 1 ? at::empty({T, d}, y.options()) : at::zeros({T, d}, y.options());
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "moe_scatter_bwd", [&] {
      const scalar_t* sp = dx_sorted.data_ptr<scalar_t>();
      const int64_t* tp = token.data_ptr<int64_t>();
      scalar_t* dp = dx.data_ptr<scalar_t>();
      at::parallel_for(0, d, kColumnGrain, [&](int64_t c0, int64_t c1) {  // as the combine
        for (int64_t a = 0; a < A; ++a) {
          scalar_t* row = dp + tp[a] * d;
          const scalar_t* src = sp + a * d;
          if (top_k == 1) {
            for (int64_t i = c0; i < c1; ++i) row[i] = src[i];
          } else {
            for (int64_t i = c0; i < c1; ++i) row[i] += src[i];
          }
        }
      });
    });
    variable_list out = {dx, dgates};
    for (auto& t : weight_grads(ctx, dw)) out.push_back(t);
    for (int i = 0; i < 4; ++i) out.push_back(at::Tensor());  // token, counts, top_k, accumulate
    return out;
  }
};

}  // namespace

at::Tensor pool_experts(const at::Tensor& x_sorted, const std::vector<int64_t>& counts,
                        const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down,
                        bool accumulate_into_grad) {
  TORCH_CHECK(int64_t(counts.size()) == w_gate.size(0), "pool_experts: one count per expert");
  return PoolExpertsFn::apply(x_sorted, w_gate, w_up, w_down, counts, accumulate_into_grad);
}

at::Tensor moe_experts(const at::Tensor& x, const at::Tensor& gates_sorted, const at::Tensor& token,
                       const std::vector<int64_t>& counts, int64_t top_k, const at::Tensor& w_gate,
                       const at::Tensor& w_up, const at::Tensor& w_down,
                       bool accumulate_into_grad) {
  TORCH_CHECK(int64_t(counts.size()) == w_gate.size(0), "moe_experts: one count per expert");
  TORCH_CHECK(token.numel() == x.size(0) * top_k, "moe_experts: need top_k rows per token");
  return MoeExpertsFn::apply(x, gates_sorted, w_gate, w_up, w_down, token, counts, top_k,
                             accumulate_into_grad);
}

at::Tensor dispatch_experts(const at::Tensor& x, const at::Tensor& global_ids,
                            const at::Tensor& gates, const at::Tensor& w_gate,
                            const at::Tensor& w_up, const at::Tensor& w_down,
                            bool accumulate_pool_grads) {
  const int64_t T = x.size(0), k = global_ids.size(1), A = T * k, N = w_gate.size(0);
  const at::Tensor ids = global_ids.contiguous();
  const int64_t* idp = ids.data_ptr<int64_t>();
  // Counting sort of the T*k (token, choice) pairs by expert; stable, so deterministic.
  std::vector<int64_t> counts(static_cast<size_t>(N), 0);
  for (int64_t a = 0; a < A; ++a) {
    TORCH_CHECK(idp[a] >= 0 && idp[a] < N, "expert id out of range");
    ++counts[size_t(idp[a])];
  }
  std::vector<int64_t> cursor(static_cast<size_t>(N), 0);
  for (int64_t e = 1; e < N; ++e) cursor[size_t(e)] = cursor[size_t(e - 1)] + counts[size_t(e - 1)];
  const auto long_opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor order = at::empty({A}, long_opts);  // (A): sorted slot -> (token, choice) pair
  at::Tensor token = at::empty({A}, long_opts);  // (A): sorted slot -> token
  int64_t *op = order.data_ptr<int64_t>(), *tp = token.data_ptr<int64_t>();
  for (int64_t a = 0; a < A; ++a) {
    const int64_t slot = cursor[size_t(idp[a])]++;
    op[slot] = a;
    tp[slot] = a / k;
  }
  const at::Tensor gates_sorted = gates.reshape({A}).index_select(0, order);  // (A)
  return moe_experts(x, gates_sorted, token, counts, k, w_gate, w_up, w_down,
                     accumulate_pool_grads);
}

}  // namespace unipool
