// The fused NormRouter: LibTorch's chain (norm, divide, relu, two multiplies, and their
// backward passes) made six passes over (T, M) with a temporary each; this makes one.
//   forward:  n = ||z||, u_j = z_j / (n + eps), s_k = a relu(u_{cols[k]})
//   backward: g_k = ds_k a [u_{cols[k]} > 0]
//             dz_i = g(i) / (n + eps) - z_i (sum_k g_k z_{cols[k]}) / ((n + eps)^2 n)
//             da   = sum over tokens and k of ds_k relu(u_{cols[k]})
// (g(i) is g_k where i = cols[k], else 0; with n = 0 every u is 0 and the gradient is 0.)
// Float on the CPU (every training step) runs the vectorised loops of cpu_kernels/; other
// types (the tests' double precision) run the plain loops here.
#include "model/norm_router.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "cpu_kernels/cpu_kernels.h"

namespace unipool {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

constexpr double kEps = 1e-8;

bool fused_float(const at::Tensor& z) {
  return z.scalar_type() == at::kFloat && z.device().is_cpu();
}

// The plain loops of the formulas above. z (T, M), cols (K) -> s (T, K), norm (T).
template <typename scalar_t>
void forward_plain(const scalar_t* z, int64_t T, int64_t M, const int64_t* cols, int64_t K,
                   scalar_t a, scalar_t* s, scalar_t* norm) {
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* row = z + t * M;
    scalar_t ss = 0;
    for (int64_t j = 0; j < M; ++j) ss += row[j] * row[j];
    const scalar_t n = std::sqrt(ss);
    norm[t] = n;
    const scalar_t inv = scalar_t(1) / (n + scalar_t(kEps));
    for (int64_t k = 0; k < K; ++k) {
      const scalar_t u = row[cols[k]] * inv;
      s[t * K + k] = u > 0 ? a * u : scalar_t(0);
    }
  }
}

// ds (T, K) -> dz (T, M), zero-filled by the caller; returns da / c.
template <typename scalar_t>
double backward_plain(const scalar_t* z, const scalar_t* norm, const scalar_t* ds, int64_t T,
                      int64_t M, const int64_t* cols, int64_t K, scalar_t a, scalar_t* dz) {
  double da = 0;  // summed in double: a reduction over every score
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* row = z + t * M;
    scalar_t* drow = dz + t * M;
    const scalar_t n = norm[t];
    const scalar_t inv = scalar_t(1) / (n + scalar_t(kEps));
    scalar_t dot = 0;  // sum_k g_k z_{cols[k]}
    for (int64_t k = 0; k < K; ++k) {
      const scalar_t u = row[cols[k]] * inv;
      if (u <= 0) continue;
      const scalar_t dsk = ds[t * K + k];
      da += double(dsk) * double(u);
      const scalar_t g = dsk * a;
      drow[cols[k]] += g * inv;
      dot += g * row[cols[k]];
    }
    if (dot == 0 || n == 0) continue;
    const scalar_t f = dot * inv * inv / n;
    for (int64_t j = 0; j < M; ++j) drow[j] -= row[j] * f;
  }
  return da;
}

struct NormRouterFn : public torch::autograd::Function<NormRouterFn> {
  // `cols` travels as a plain vector (empty: every column): an undefined tensor argument would
  // confuse autograd.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& z_in, const at::Tensor& scale,
                            double c, std::vector<int64_t> cols) {
    const at::Tensor z = z_in.contiguous();
    const int64_t T = z.size(0), M = z.size(1);
    if (cols.empty())
      for (int64_t j = 0; j < M; ++j) cols.push_back(j);
    const int64_t K = int64_t(cols.size());  // K = M: every column (ascending ids, so in order)
    at::Tensor s = at::empty({T, K}, z.options());
    at::Tensor norm = at::empty({T}, z.options());
    const double a = scale.item<double>() * c;
    if (fused_float(z)) {
      const float* zp = z.data_ptr<float>();
      float *sp = s.data_ptr<float>(), *np = norm.data_ptr<float>();
      const int64_t* cp = K == M ? nullptr : cols.data();
      at::parallel_for(0, T, 256, [&](int64_t begin, int64_t end) {  // tokens are independent
        cpu::norm_router_forward(zp + begin * M, end - begin, M, cp, K, float(a), sp + begin * K,
                                 np + begin);
      });
    } else {
      AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "norm_router_fwd", [&] {
        forward_plain<scalar_t>(z.data_ptr<scalar_t>(), T, M, cols.data(), K, scalar_t(a),
                                s.data_ptr<scalar_t>(), norm.data_ptr<scalar_t>());
      });
    }
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
    const double a = scale.item<double>() * c;
    at::Tensor dz;
    double da = 0;
    if (fused_float(z)) {
      dz = at::empty_like(z);  // every entry written
      da = c * cpu::norm_router_backward(z.data_ptr<float>(), norm.data_ptr<float>(),
                                         ds.data_ptr<float>(), T, M, K == M ? nullptr : cols, K,
                                         float(a), dz.data_ptr<float>());
    } else {
      dz = at::zeros_like(z);
      AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "norm_router_bwd", [&] {
        da = c * backward_plain<scalar_t>(z.data_ptr<scalar_t>(), norm.data_ptr<scalar_t>(),
                                          ds.data_ptr<scalar_t>(), T, M, cols, K, scalar_t(a),
                                          dz.data_ptr<scalar_t>());
      });
    }
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
