// RoPE (SPEC section 2, rotate-half) fused with the move of heads in front of positions, with
// a hand-written backward, and its cached cos/sin tables.
#include "model/rope.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

namespace unipool {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

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
