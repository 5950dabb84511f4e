#include "model/linear.h"

#include "model/blas_gemm.h"

namespace unipool {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct LinearFn : public torch::autograd::Function<LinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w) {
    at::Tensor y = at::empty({x.size(0), w.size(0)}, x.options());  // (T, out)
    gemm_into(y, x, w.t(), 0.0f);
    ctx->save_for_backward({x, w});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const at::Tensor dy = grads[0].contiguous();  // (T, out)
    at::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      dx = at::empty_like(x);  // (T, in) = dy @ w
      gemm_into(dx, dy, w, 0.0f);
    }
    if (ctx->needs_input_grad(1)) {
      dw = at::empty_like(w);  // (out, in) = dy^T @ x, as mm's backward computes it for w.t()
      gemm_into(dw, dy.t(), x, 0.0f);
    }
    return {dx, dw};
  }
};

}  // namespace

at::Tensor linear_rows(const at::Tensor& x, const at::Tensor& w) {
  // Other types, devices or layouts: LibTorch's own op.
  if (x.dim() != 2 || w.dim() != 2 || x.scalar_type() != at::kFloat ||
      w.scalar_type() != at::kFloat || !x.device().is_cpu() || !w.device().is_cpu() ||
      !x.is_contiguous() || !w.is_contiguous())
    return at::mm(x, w.t());
  return LinearFn::apply(x, w);
}

}  // namespace unipool
