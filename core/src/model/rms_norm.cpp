// RMSNorm with a hand-written backward: one fused float loop each way (cpu_kernels), plain
// templates for double (the finite-difference tests).
#include "model/rms_norm.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "cpu_kernels/cpu_kernels.h"

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
      const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
      float *yp = y.data_ptr<float>(), *rp = rstd.data_ptr<float>();
      at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {  // rows are independent
        cpu::rms_norm_forward(xp + begin * d, wp, yp + begin * d, rp + begin, end - begin, d,
                              float(eps));
      });
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
      const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *rp = rstd.data_ptr<float>();
      const float* gp = dy.data_ptr<float>();
      float *dxp = dx.data_ptr<float>(), *dwp = dw.data_ptr<float>();
      // dx by rows on the compute threads (the kernel's own dw of a row range is discarded);
      // dw, a sum over rows, by columns: each column summed in row order with the kernel's
      // expression, so the bytes do not depend on the thread count.
      at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
        std::vector<float> scratch(static_cast<size_t>(d), 0.0f);
        cpu::rms_norm_backward(xp + begin * d, wp, rp + begin, gp + begin * d, dxp + begin * d,
                               scratch.data(), end - begin, d);
      });
      at::parallel_for(0, d, 16, [&](int64_t c0, int64_t c1) {
        cpu::rms_norm_weight_grad(xp, rp, gp, dwp, rows, d, c0, c1);
      });
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

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNormFn::apply(x, weight, eps);
}

}  // namespace unipool
