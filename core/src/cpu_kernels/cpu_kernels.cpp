// Picks the AVX2 or the baseline build of each fused loop once, by what the CPU supports.
#include "cpu_kernels/cpu_kernels.h"

namespace unipool::cpu {

#define UNIPOOL_DECLARE(ns)                                                                        \
  namespace ns {                                                                                   \
  void silu_mul(const float*, const float*, float*, int64_t);                                      \
  void silu_mul_backward(const float*, float*, float*, int64_t);                                   \
  void causal_softmax_block(float*, int64_t, int64_t, int64_t, int64_t, float);                    \
  void softmax_backward_block(const float*, float*, int64_t, int64_t, int64_t, int64_t, float);    \
  void adamw(float*, const float*, float*, float*, int64_t, float, float, float, float, float,     \
             float);                                                                               \
  double sum_squares(const float*, int64_t);                                                       \
  void norm_router_forward(const float*, int64_t, int64_t, const int64_t*, int64_t, float, float*, \
                           float*);                                                                \
  double norm_router_backward(const float*, const float*, const float*, int64_t, int64_t,          \
                              const int64_t*, int64_t, float, float*);                             \
  void rms_norm_forward(const float*, const float*, float*, float*, int64_t, int64_t, float);      \
  void rms_norm_backward(const float*, const float*, const float*, const float*, float*, float*,   \
                         int64_t, int64_t);                                                        \
  void rms_norm_weight_grad(const float*, const float*, const float*, float*, int64_t, int64_t,     \
                            int64_t, int64_t);                                                     \
  }
UNIPOOL_DECLARE(avx2)
UNIPOOL_DECLARE(base)

namespace {
// GCC asks for __builtin_cpu_init() before __builtin_cpu_supports() in static initialisers.
const bool kHasAvx2 =
    (__builtin_cpu_init(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
}  // namespace

#define UNIPOOL_DISPATCH(fn, ...) return kHasAvx2 ? avx2::fn(__VA_ARGS__) : base::fn(__VA_ARGS__)

void silu_mul(const float* g, const float* u, float* out, int64_t n) {
  UNIPOOL_DISPATCH(silu_mul, g, u, out, n);
}
void silu_mul_backward(const float* da, float* g, float* u, int64_t n) {
  UNIPOOL_DISPATCH(silu_mul_backward, da, g, u, n);
}
void causal_softmax_block(float* p, int64_t rows, int64_t width, int64_t rep, int64_t first_pos,
                          float scale) {
  UNIPOOL_DISPATCH(causal_softmax_block, p, rows, width, rep, first_pos, scale);
}
void softmax_backward_block(const float* p, float* dp, int64_t rows, int64_t width, int64_t rep,
                            int64_t first_pos, float scale) {
  UNIPOOL_DISPATCH(softmax_backward_block, p, dp, rows, width, rep, first_pos, scale);
}
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, float beta1, float beta2,
           float step_size, float inv_sqrt_bc2, float eps, float decay) {
  UNIPOOL_DISPATCH(adamw, param, grad, m, v, n, beta1, beta2, step_size, inv_sqrt_bc2, eps, decay);
}
double sum_squares(const float* x, int64_t n) { UNIPOOL_DISPATCH(sum_squares, x, n); }
void norm_router_forward(const float* z, int64_t T, int64_t M, const int64_t* cols, int64_t K,
                         float a, float* s, float* norm) {
  UNIPOOL_DISPATCH(norm_router_forward, z, T, M, cols, K, a, s, norm);
}
double norm_router_backward(const float* z, const float* norm, const float* ds, int64_t T,
                            int64_t M, const int64_t* cols, int64_t K, float a, float* dz) {
  UNIPOOL_DISPATCH(norm_router_backward, z, norm, ds, T, M, cols, K, a, dz);
}
void rms_norm_forward(const float* x, const float* w, float* y, float* rstd, int64_t rows,
                      int64_t d, float eps) {
  UNIPOOL_DISPATCH(rms_norm_forward, x, w, y, rstd, rows, d, eps);
}
void rms_norm_backward(const float* x, const float* w, const float* rstd, const float* dy,
                       float* dx, float* dw, int64_t rows, int64_t d) {
  UNIPOOL_DISPATCH(rms_norm_backward, x, w, rstd, dy, dx, dw, rows, d);
}
void rms_norm_weight_grad(const float* x, const float* rstd, const float* dy, float* dw,
                          int64_t rows, int64_t d, int64_t c0, int64_t c1) {
  UNIPOOL_DISPATCH(rms_norm_weight_grad, x, rstd, dy, dw, rows, d, c0, c1);
}

}  // namespace unipool::cpu
