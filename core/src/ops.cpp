#include "ops.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "cpu_kernels.h"

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
    } else
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm_fwd", [&] {
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
                             dy.data_ptr<float>(), dx.data_ptr<float>(), dw.data_ptr<float>(), rows,
                             d);
    } else
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm_bwd", [&] {
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
// RoPE fused with the head transpose: in (B, S, nh, hd) -> out (B, nh/group, S, group, hd),
// i.e. heads in groups of `group` consecutive heads (the query heads sharing one kv head).
//   y1 = x1*c - x2*s,  y2 = x2*c + x1*s   (rotate-half, c and s of pair i)
// and its transpose for backward: dx1 = dy1*c + dy2*s,  dx2 = dy2*c - dy1*s.
template <bool kInverse>
void rope_apply(const at::Tensor& in, at::Tensor& out, const at::Tensor& cos, const at::Tensor& sin,
                bool in_is_bsh, int64_t B, int64_t S, int64_t nh, int64_t group) {
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
          const int64_t g = h / group, r = h % group;       // (B, nh/group, S, group, hd) offset
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
