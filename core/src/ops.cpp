#include "ops.h"

#include "cpu_kernels.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

namespace unipool {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// ---------------------------------------------------------------------------------------------
// RMSNorm. Saves x and the per-row reciprocal RMS; backward is
//   dx = rstd * (dy*w - xhat * mean(dy*w*xhat)),  dw = sum_rows dy * xhat,  xhat = x * rstd.
struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w,
                            double eps) {
    const at::Tensor x = x_in.contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / d;
    at::Tensor y = at::empty_like(x);
    at::Tensor rstd = at::empty({rows}, x.options());
    if (x.scalar_type() == at::kFloat) {
      cpu::rms_norm_forward(x.data_ptr<float>(), w.data_ptr<float>(), y.data_ptr<float>(),
                            rstd.data_ptr<float>(), rows, d, float(eps));
    } else AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm_fwd", [&] {
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const scalar_t* wp = w.data_ptr<scalar_t>();
      scalar_t* yp = y.data_ptr<scalar_t>();
      scalar_t* rp = rstd.data_ptr<scalar_t>();
      at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const scalar_t* xr = xp + r * d;
          scalar_t* yr = yp + r * d;
          scalar_t ss = 0;
          for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
          const scalar_t inv = scalar_t(1) / std::sqrt(ss / scalar_t(d) + scalar_t(eps));
          rp[r] = inv;
          for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * wp[i];
        }
      });
    });
    ctx->save_for_backward({x, w, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rstd = saved[2];
    const at::Tensor dy = grads[0].contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / d;
    at::Tensor dx = at::empty_like(x);
    at::Tensor dw = at::zeros_like(w);
    if (x.scalar_type() == at::kFloat) {
      cpu::rms_norm_backward(x.data_ptr<float>(), w.data_ptr<float>(), rstd.data_ptr<float>(),
                             dy.data_ptr<float>(), dx.data_ptr<float>(), dw.data_ptr<float>(),
                             rows, d);
    } else AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm_bwd", [&] {
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const scalar_t* wp = w.data_ptr<scalar_t>();
      const scalar_t* rp = rstd.data_ptr<scalar_t>();
      const scalar_t* gp = dy.data_ptr<scalar_t>();
      scalar_t* dxp = dx.data_ptr<scalar_t>();
      scalar_t* dwp = dw.data_ptr<scalar_t>();
      at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const scalar_t *xr = xp + r * d, *gr = gp + r * d;
          const scalar_t inv = rp[r];
          scalar_t dot = 0;  // sum_i dy_i * w_i * xhat_i
          for (int64_t i = 0; i < d; ++i) dot += gr[i] * wp[i] * xr[i] * inv;
          const scalar_t mean_dot = dot / scalar_t(d);
          scalar_t* dxr = dxp + r * d;
          for (int64_t i = 0; i < d; ++i) dxr[i] = inv * (gr[i] * wp[i] - xr[i] * inv * mean_dot);
        }
      });
      // The weight gradient is a reduction over rows: kept serial so the sum order is fixed.
      for (int64_t r = 0; r < rows; ++r) {
        const scalar_t *xr = xp + r * d, *gr = gp + r * d;
        const scalar_t inv = rp[r];
        for (int64_t i = 0; i < d; ++i) dwp[i] += gr[i] * xr[i] * inv;
      }
    });
    return {dx.view(grads[0].sizes()), dw, at::Tensor()};
  }
};

// ---------------------------------------------------------------------------------------------
// SwiGLU experts over expert-grouped rows. Forward keeps the gate and up projections
// g, u: (A, h); the activation silu(g) * u is recomputed in backward rather than stored.
template <typename scalar_t>
inline scalar_t sigmoid(scalar_t v) {
  return scalar_t(1) / (scalar_t(1) + std::exp(-v));
}

void swiglu_forward(const at::Tensor& g, const at::Tensor& u, at::Tensor& act) {
  if (g.scalar_type() == at::kFloat) {
    cpu::silu_mul(g.data_ptr<float>(), u.data_ptr<float>(), act.data_ptr<float>(), g.numel());
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "swiglu_fwd", [&] {
    const scalar_t *gp = g.data_ptr<scalar_t>(), *up = u.data_ptr<scalar_t>();
    scalar_t* ap = act.data_ptr<scalar_t>();
    at::parallel_for(0, g.numel(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) ap[i] = gp[i] * sigmoid(gp[i]) * up[i];
    });
  });
}

// d(silu(g) * u): dg = da * u * sig * (1 + g * (1 - sig)), du = da * silu(g). Overwrites g and u.
void swiglu_backward_inplace(const at::Tensor& da, at::Tensor& g, at::Tensor& u) {
  if (g.scalar_type() == at::kFloat) {
    cpu::silu_mul_backward(da.data_ptr<float>(), g.data_ptr<float>(), u.data_ptr<float>(),
                           g.numel());
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "swiglu_bwd", [&] {
    const scalar_t* dap = da.data_ptr<scalar_t>();
    scalar_t *gp = g.data_ptr<scalar_t>(), *up = u.data_ptr<scalar_t>();
    at::parallel_for(0, g.numel(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t gv = gp[i], uv = up[i], s = sigmoid(gv);
        gp[i] = dap[i] * uv * s * (scalar_t(1) + gv * (scalar_t(1) - s));
        up[i] = dap[i] * gv * s;
      }
    });
  });
}

struct PoolExpertsFn : public torch::autograd::Function<PoolExpertsFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_gate,
                            const at::Tensor& w_up, const at::Tensor& w_down,
                            std::vector<int64_t> counts, bool accumulate_into_grad) {
    const at::Tensor x = x_in.contiguous();
    const int64_t A = x.size(0), h = w_gate.size(1), d = w_gate.size(2);
    at::Tensor g = at::empty({A, h}, x.options());  // (A, h) gate projection
    at::Tensor u = at::empty({A, h}, x.options());  // (A, h) up projection
    at::Tensor act = at::empty({A, h}, x.options());
    at::Tensor y = at::empty({A, d}, x.options());
    int64_t offset = 0;
    for (size_t e = 0; e < counts.size(); ++e) {
      const int64_t c = counts[e];
      if (c == 0) continue;
      const at::Tensor xe = x.narrow(0, offset, c);
      at::Tensor ge = g.narrow(0, offset, c), ue = u.narrow(0, offset, c);
      at::mm_out(ge, xe, w_gate[int64_t(e)].t());
      at::mm_out(ue, xe, w_up[int64_t(e)].t());
      offset += c;
    }
    swiglu_forward(g, u, act);
    offset = 0;
    for (size_t e = 0; e < counts.size(); ++e) {
      const int64_t c = counts[e];
      if (c == 0) continue;
      at::Tensor ye = y.narrow(0, offset, c);
      at::mm_out(ye, act.narrow(0, offset, c), w_down[int64_t(e)].t());
      offset += c;
    }
    ctx->save_for_backward({x, w_gate, w_up, w_down, g, u});
    ctx->saved_data["counts"] = counts;
    if (accumulate_into_grad) {
      // Keep the leaf tensors themselves: backward adds into their .grad directly.
      ctx->saved_data["leaves"] = std::vector<at::Tensor>{w_gate, w_up, w_down};
    }
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w_gate = saved[1], &w_up = saved[2], &w_down = saved[3];
    // g and u are this node's own buffers and backward runs once: reuse them in place.
    at::Tensor g = saved[4], u = saved[5];
    const std::vector<int64_t> counts = ctx->saved_data["counts"].toIntVector();
    // Accumulating mode: the pool is shared by every layer, so instead of each layer returning
    // full-size (N, h, d) zero-filled gradients for autograd to add up, every layer's expert
    // products go straight into the one .grad buffer (zeroed once per step).
    const bool accumulate = ctx->saved_data.count("leaves") != 0;
    auto grad_buffer = [&](int i, const at::Tensor& w) {
      if (!accumulate) return at::zeros_like(w);
      const at::Tensor leaf = ctx->saved_data["leaves"].toTensorList().get(size_t(i));
      at::Tensor& grad = leaf.mutable_grad();
      if (!grad.defined()) grad = at::zeros_like(leaf);
      return grad;
    };
    const at::Tensor dy = grads[0].contiguous();  // (A, d)
    const int64_t A = x.size(0), h = w_gate.size(1);
    at::Tensor act = at::empty({A, h}, x.options());
    swiglu_forward(g, u, act);
    at::Tensor da = at::empty({A, h}, x.options());
    at::Tensor d_gate = grad_buffer(0, w_gate), d_up = grad_buffer(1, w_up);
    at::Tensor d_down = grad_buffer(2, w_down), dx = at::empty_like(x);
    int64_t offset = 0;
    for (size_t e = 0; e < counts.size(); ++e) {
      const int64_t c = counts[e];
      if (c == 0) continue;
      const at::Tensor dye = dy.narrow(0, offset, c);
      at::Tensor dae = da.narrow(0, offset, c), dde = d_down[int64_t(e)];
      at::mm_out(dae, dye, w_down[int64_t(e)]);               // (c, h)
      dde.addmm_(dye.t(), act.narrow(0, offset, c));          // (d, h), accumulated
      offset += c;
    }
    swiglu_backward_inplace(da, g, u);  // g <- d(gate proj), u <- d(up proj)
    offset = 0;
    for (size_t e = 0; e < counts.size(); ++e) {
      const int64_t c = counts[e];
      if (c == 0) continue;
      const at::Tensor xe = x.narrow(0, offset, c);
      const at::Tensor dge = g.narrow(0, offset, c), due = u.narrow(0, offset, c);
      at::Tensor dgw = d_gate[int64_t(e)], duw = d_up[int64_t(e)];
      dgw.addmm_(dge.t(), xe);  // (h, d), accumulated
      duw.addmm_(due.t(), xe);
      at::Tensor dxe = dx.narrow(0, offset, c);
      at::mm_out(dxe, dge, w_gate[int64_t(e)]);  // (c, d)
      dxe.addmm_(due, w_up[int64_t(e)]);
      offset += c;
    }
    if (accumulate) return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    return {dx, d_gate, d_up, d_down, at::Tensor(), at::Tensor()};
  }
};

// ---------------------------------------------------------------------------------------------
// RoPE fused with the head transpose: in (B, S, nh, hd) -> out (B, nh/group, S, group, hd),
// i.e. heads in groups of `group` consecutive heads (the query heads sharing one kv head).
//   y1 = x1*c - x2*s,  y2 = x2*c + x1*s   (rotate-half, c and s of pair i)
// and its transpose for backward: dx1 = dy1*c + dy2*s,  dx2 = dy2*c - dy1*s.
template <bool kInverse>
void rope_apply(const at::Tensor& in, at::Tensor& out, const at::Tensor& cos,
                const at::Tensor& sin, bool in_is_bsh, int64_t B, int64_t S, int64_t nh,
                int64_t group) {
  const int64_t hd = in.size(-1), half = hd / 2;
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "rope", [&] {
    const scalar_t* ip = in.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const scalar_t *cp = cos.data_ptr<scalar_t>(), *sp = sin.data_ptr<scalar_t>();
    at::parallel_for(0, B * S, 16, [&](int64_t begin, int64_t end) {
      for (int64_t bs = begin; bs < end; ++bs) {
        const int64_t b = bs / S, s = bs % S;
        const scalar_t *c = cp + s * hd, *sn = sp + s * hd;
        for (int64_t h = 0; h < nh; ++h) {
          const int64_t bsh = ((b * S + s) * nh + h) * hd;  // (B, S, nh, hd) offset
          const int64_t g = h / group, r = h % group;    // (B, nh/group, S, group, hd) offset
          const int64_t bhs = (((b * (nh / group) + g) * S + s) * group + r) * hd;
          const scalar_t* x = ip + (in_is_bsh ? bsh : bhs);
          scalar_t* y = op + (in_is_bsh ? bhs : bsh);
          for (int64_t i = 0; i < half; ++i) {
            const scalar_t x1 = x[i], x2 = x[i + half], ci = c[i], si = sn[i];
            if (kInverse) {
              y[i] = x1 * ci + x2 * si;
              y[i + half] = x2 * ci - x1 * si;
            } else {
              y[i] = x1 * ci - x2 * si;
              y[i + half] = x2 * ci + x1 * si;
            }
          }
        }
      }
    });
  });
}

struct RopeFn : public torch::autograd::Function<RopeFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& cos,
                            const at::Tensor& sin, int64_t group) {
    const at::Tensor x = x_in.contiguous();  // (B, S, nh, hd)
    const int64_t B = x.size(0), S = x.size(1), nh = x.size(2), hd = x.size(3);
    at::Tensor y = at::empty({B, nh / group, S, group, hd}, x.options());
    rope_apply<false>(x, y, cos, sin, /*in_is_bsh=*/true, B, S, nh, group);
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["group"] = group;
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor dy = grads[0].contiguous();  // (B, nh/group, S, group, hd)
    const int64_t B = dy.size(0), S = dy.size(2), group = dy.size(3);
    const int64_t nh = dy.size(1) * group, hd = dy.size(4);
    at::Tensor dx = at::empty({B, S, nh, hd}, dy.options());
    rope_apply<true>(dy, dx, saved[0], saved[1], /*in_is_bsh=*/false, B, S, nh, group);
    return {dx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::pair<at::Tensor, at::Tensor> rope_tables_uncached(int64_t seq, int64_t head_dim, double theta,
                                                       at::ScalarType dtype);

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNormFn::apply(x, weight, eps);
}

at::Tensor pool_experts(const at::Tensor& x_sorted, const std::vector<int64_t>& counts,
                        const at::Tensor& w_gate, const at::Tensor& w_up,
                        const at::Tensor& w_down, bool accumulate_into_grad) {
  TORCH_CHECK(int64_t(counts.size()) == w_gate.size(0), "pool_experts: one count per expert");
  return PoolExpertsFn::apply(x_sorted, w_gate, w_up, w_down, counts, accumulate_into_grad);
}

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const auto s = x.sizes();
  return RopeFn::apply(x, cos, sin, int64_t(1)).view({s[0], s[2], s[1], s[3]});
}

at::Tensor rope_grouped(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        int64_t group) {
  TORCH_CHECK(x.size(2) % group == 0, "rope_grouped: heads must divide into groups");
  return RopeFn::apply(x, cos, sin, group);
}

std::pair<at::Tensor, at::Tensor> rope_tables(int64_t seq, int64_t head_dim, double theta,
                                              at::ScalarType dtype) {
  // Every forward pass asks for the same tables: keep the last ones (per thread, no locks).
  struct Cached {
    int64_t seq = -1, head_dim = -1;
    double theta = 0;
    at::ScalarType dtype = at::kFloat;
    std::pair<at::Tensor, at::Tensor> tables;
  };
  thread_local Cached cache;
  if (cache.seq == seq && cache.head_dim == head_dim && cache.theta == theta &&
      cache.dtype == dtype) {
    return cache.tables;
  }
  cache = {seq, head_dim, theta, dtype, rope_tables_uncached(seq, head_dim, theta, dtype)};
  return cache.tables;
}

std::pair<at::Tensor, at::Tensor> rope_tables_uncached(int64_t seq, int64_t head_dim, double theta,
                                                       at::ScalarType dtype) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor i = at::arange(head_dim / 2, f64);
  const at::Tensor inv_freq = at::pow(theta, -2.0 * i / double(head_dim));  // (hd/2)
  const at::Tensor angle = at::outer(at::arange(seq, f64), inv_freq);       // (S, hd/2)
  const at::Tensor full = at::cat({angle, angle}, 1);                       // (S, hd)
  return {full.cos().to(dtype), full.sin().to(dtype)};
}


}  // namespace unipool
