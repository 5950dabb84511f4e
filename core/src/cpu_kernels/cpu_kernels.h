// Float32 loops of the training step's elementwise work, compiled twice (AVX2+FMA and the
// x86-64 baseline) and picked at load time by the CPU. LibTorch's own elementwise kernels run
// one pass per op; these fuse what a step does back to back. Double precision (the tests'
// finite differences) takes the plain template paths in ops.cpp and adamw.cpp instead.
#pragma once

#include <cstdint>

namespace unipool::cpu {

// out = silu(g) * u. (n)
void silu_mul(const float* g, const float* u, float* out, int64_t n);
// Given da = d(out): g <- da * u * silu'(g), u <- da * silu(g). In place. (n)
void silu_mul_backward(const float* da, float* g, float* u, int64_t n);
// One block of causal attention probabilities, p: (rows, width) contiguous. Row r is query
// position first_pos + r / rep (rep query heads per position); it may see keys
// [0, min(pos + 1, width)). In place: softmax(p * scale) over those, zeros after.
void causal_softmax_block(float* p, int64_t rows, int64_t width, int64_t rep, int64_t first_pos,
                          float scale);
// dp <- p * (dp - rowsum(p * dp)) * scale over the same visible entries, zeros after.
void softmax_backward_block(const float* p, float* dp, int64_t rows, int64_t width, int64_t rep,
                            int64_t first_pos, float scale);
// One AdamW step over n values (decoupled decay factor `decay` = 1 - lr * wd).
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, float beta1, float beta2,
           float step_size, float inv_sqrt_bc2, float eps, float decay);
// RMSNorm rows of x (rows x d): y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps).
void rms_norm_forward(const float* x, const float* w, float* y, float* rstd, int64_t rows,
                      int64_t d, float eps);
// dx = rstd * (dy*w - xhat * mean(dy*w*xhat)); dw += sum over rows of dy * xhat.
void rms_norm_backward(const float* x, const float* w, const float* rstd, const float* dy,
                       float* dx, float* dw, int64_t rows, int64_t d);
// rms_norm_backward's dw alone, for columns [c0, c1): dw[i] += sum over rows in row order, the
// same expression, so a column split gives rms_norm_backward's bytes.
void rms_norm_weight_grad(const float* x, const float* rstd, const float* dy, float* dw,
                          int64_t rows, int64_t d, int64_t c0, int64_t c1);
// NormRouter (paper Eq. 7) on logits z (T, M): norm[t] = ||z[t, :]||, and for the K columns
// `cols` (nullptr: all M, K = M) s[t, k] = a * relu(z[t, cols[k]] / (norm[t] + 1e-8)). (T, K)
void norm_router_forward(const float* z, int64_t T, int64_t M, const int64_t* cols, int64_t K,
                         float a, float* s, float* norm);
// Its backward given ds (T, K): dz (T, M) in full (the norm reaches every column); returns
// sum over tokens and k of ds * relu(u), da's factor (each token's terms summed in float,
// the tokens in double).
double norm_router_backward(const float* z, const float* norm, const float* ds, int64_t T,
                            int64_t M, const int64_t* cols, int64_t K, float a, float* dz);
// Sum of squares, accumulated in double.
double sum_squares(const float* x, int64_t n);

}  // namespace unipool::cpu
