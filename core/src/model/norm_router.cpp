// The fused NormRouter: LibTorch's chain (norm, divide, relu, two multiplies, and their
// backward passes) made six passes over (T, M) with a temporary each; this makes one.
//   forward:  n = ||z||, u_j = z_j / (n + eps), s_k = a relu(u_{cols[k]})
//   backward: g_k = ds_k a [u_{cols[k]} > 0]
//             dz_i = g(i) / (n + eps) - z_i (sum_k g_k z_{cols[k]}) / ((n + eps)^2 n)
//             da   = sum over tokens and k of ds_k relu(u_{cols[k]})
// (g(i) is g_k where i = cols[k], else 0; with n = 0 every u is 0 and the gradient is 0.)
#include "model/norm_router.h"

#include <cmath>
#include <vector>

namespace unipool {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

constexpr double kEps = 1e-8;

struct NormRouterFn : public torch::autograd::Function<NormRouterFn> {
  // `cols` travels as a plain vector: an undefined tensor argument would confuse autograd.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& z_in, const at::Tensor& scale,
                            double c, std::vector<int64_t> cols) {
    const at::Tensor z = z_in.contiguous();
    const int64_t T = z.size(0), M = z.size(1);
    if (cols.empty())
      for (int64_t j = 0; j < M; ++j) cols.push_back(j);
    const int64_t K = int64_t(cols.size());
    at::Tensor s = at::empty({T, K}, z.options());
    at::Tensor norm = at::empty({T}, z.options());
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "norm_router_fwd", [&] {
      const scalar_t* zp = z.data_ptr<scalar_t>();
      scalar_t* sp = s.data_ptr<scalar_t>();
      scalar_t* np = norm.data_ptr<scalar_t>();
      const scalar_t a = scalar_t(scale.item<double>() * c);
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* row = zp + t * M;
        scalar_t ss = 0;
        for (int64_t j = 0; j < M; ++j) ss += row[j] * row[j];
        const scalar_t n = std::sqrt(ss);
        np[t] = n;
        const scalar_t inv = scalar_t(1) / (n + scalar_t(kEps));
        for (int64_t k = 0; k < K; ++k) {
          const scalar_t u = row[cols[size_t(k)]] * inv;
          sp[t * K + k] = u > 0 ? a * u : scalar_t(0);
        }
      }
    });
    ctx->save_for_backward({z, scale, norm});
    ctx->saved_data["c"] = c;
    ctx->saved_data["cols"] = at::tensor(cols, at::TensorOptions().dtype(at::kLong));
    return s;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &z = saved[0], &scale = saved[1], &norm = saved[2];
    const double c = ctx->saved_data["c"].toDouble();
    const at::Tensor cols_t = ctx->saved_data["cols"].toTensor();
    const int64_t* cols = cols_t.data_ptr<int64_t>();
    const at::Tensor ds = grads[0].contiguous();
    const int64_t T = z.size(0), M = z.size(1), K = cols_t.numel();
    at::Tensor dz = at::zeros_like(z);
    double da = 0;  // summed in double: a reduction over every score
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "norm_router_bwd", [&] {
      const scalar_t* zp = z.data_ptr<scalar_t>();
      const scalar_t* np = norm.data_ptr<scalar_t>();
      const scalar_t* gp = ds.data_ptr<scalar_t>();
      scalar_t* dp = dz.data_ptr<scalar_t>();
      const scalar_t a = scalar_t(scale.item<double>() * c);
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* row = zp + t * M;
        scalar_t* drow = dp + t * M;
        const scalar_t n = np[t];
        const scalar_t inv = scalar_t(1) / (n + scalar_t(kEps));
        scalar_t dot = 0;  // sum_k g_k z_{cols[k]}
        for (int64_t k = 0; k < K; ++k) {
          const scalar_t u = row[cols[k]] * inv;
          if (u <= 0) continue;
          const scalar_t dsk = gp[t * K + k];
          da += double(dsk) * double(u) * c;
          const scalar_t g = dsk * a;
          drow[cols[k]] += g * inv;
          dot += g * row[cols[k]];
        }
        if (dot == 0 || n == 0) continue;
        const scalar_t f = dot * inv * inv / n;
        for (int64_t j = 0; j < M; ++j) drow[j] -= row[j] * f;
      }
    });
    return {dz, at::full({1}, da, scale.options()), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor norm_router_scores(const at::Tensor& z, const at::Tensor& scale, double c,
                              const at::Tensor& cols) {
  std::vector<int64_t> list;
  if (cols.defined()) {
    const at::Tensor cc = cols.contiguous();
    list.assign(cc.data_ptr<int64_t>(), cc.data_ptr<int64_t>() + cc.numel());
  }
  return NormRouterFn::apply(z, scale, c, list);
}

}  // namespace unipool
