// Grouped SwiGLU experts over expert-sorted rows (SPEC section 2):
//   y = w_down[e] @ (silu(w_gate[e] @ x) * (w_up[e] @ x))
// Forward: two grouped GEMMs (gate, up), the elementwise SwiGLU, one grouped GEMM (down).
// Backward: the same GEMMs transposed; the weight gradients add into fp32 buffers because the
// pool is shared by all layers of a group and each layer contributes.
#include <algorithm>

#include "grouped_gemm.cuh"
#include "unipool/kernels.h"

namespace unipool::kernels {
namespace {

using namespace detail;

__device__ __forceinline__ float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

template <typename T>
__global__ void swiglu_act_kernel(int64_t n, const T* __restrict__ g, const T* __restrict__ u,
                                  T* __restrict__ act) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float gv = to_float(g[i]);
    act[i] = from_float<T>(gv * sigmoidf(gv) * to_float(u[i]));
  }
}

// d(silu(g) * u): dg = da * u * sig * (1 + g * (1 - sig)), du = da * silu(g). da is
// overwritten with dg.
template <typename T>
__global__ void swiglu_grad_kernel(int64_t n, const T* __restrict__ g, const T* __restrict__ u,
                                   T* __restrict__ da_dg, T* __restrict__ du) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float gv = to_float(g[i]), uv = to_float(u[i]), da = to_float(da_dg[i]);
    const float s = sigmoidf(gv);
    da_dg[i] = from_float<T>(da * uv * s * (1.0f + gv * (1.0f - s)));
    du[i] = from_float<T>(da * gv * s);
  }
}

unsigned elementwise_blocks(int64_t n) {
  return unsigned(std::min<int64_t>((n + 255) / 256, 65535));
}

// Rows grouping: C (rows, n) = A (rows, K) row-major times expert e's (n, K) weight transposed
// (transpose_w) or its (K, n) weight as stored.
GemmProblem rows_problem(const ExpertShape& s, const int32_t* offsets, const void* a, int K,
                         const void* w, int n, bool transpose_w, void* c, bool accumulate) {
  GemmProblem p;
  p.a = a;
  p.a_mn = K;
  p.a_k = 1;
  p.b = w;
  p.b_expert = int64_t(n) * K;
  p.b_k = transpose_w ? 1 : n;
  p.b_mn = transpose_w ? K : 1;
  p.c = c;
  p.c_m = n;
  p.offsets = offsets;
  p.experts = s.experts;
  p.rows = s.rows;
  p.n = n;
  p.k = K;
  p.accumulate = accumulate;
  return p;
}

// Reduce grouping: dW_e (m, n) += sum over expert e's rows r of A[r, :m]^T B[r, :n].
GemmProblem reduce_problem(const ExpertShape& s, const int32_t* offsets, const void* a, int m,
                           const void* b, int n, float* c) {
  GemmProblem p;
  p.a = a;
  p.a_mn = 1;
  p.a_k = m;
  p.b = b;
  p.b_k = n;
  p.b_mn = 1;
  p.b_expert = 0;
  p.c = c;
  p.c_m = n;
  p.c_expert = int64_t(m) * n;
  p.offsets = offsets;
  p.experts = s.experts;
  p.rows = s.rows;
  p.m = m;
  p.n = n;
  p.accumulate = true;
  return p;
}

template <typename T>
cudaError_t forward_t(const ExpertShape& s, const int32_t* offsets, const void* x,
                      const void* w_gate, const void* w_up, const void* w_down, void* g, void* u,
                      void* act, void* y, cudaStream_t stream) {
  cudaError_t err;
  if ((err = grouped_gemm<T, T, false>(
           rows_problem(s, offsets, x, s.d, w_gate, s.h, true, g, false), stream)))
    return err;
  if ((err = grouped_gemm<T, T, false>(rows_problem(s, offsets, x, s.d, w_up, s.h, true, u, false),
                                       stream)))
    return err;
  const int64_t n = s.rows * s.h;
  if (n > 0) {
    swiglu_act_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(
        n, static_cast<const T*>(g), static_cast<const T*>(u), static_cast<T*>(act));
  }
  if ((err = cudaGetLastError())) return err;
  return grouped_gemm<T, T, false>(rows_problem(s, offsets, act, s.h, w_down, s.d, true, y, false),
                                   stream);
}

template <typename T>
cudaError_t backward_t(const ExpertShape& s, const int32_t* offsets, const void* x,
                       const void* w_gate, const void* w_up, const void* w_down, const void* g,
                       const void* u, const void* dy, void* workspace, void* dx, float* dw_gate,
                       float* dw_up, float* dw_down, cudaStream_t stream) {
  const int64_t n = s.rows * s.h;
  T* act = static_cast<T*>(workspace);  // (A, h) each
  T* dg = act + n;
  T* du = dg + n;
  cudaError_t err;
  if (n > 0) {
    swiglu_act_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(n, static_cast<const T*>(g),
                                                                    static_cast<const T*>(u), act);
  }
  if ((err = cudaGetLastError())) return err;
  // d act = dy @ w_down[e]: (A, d) x (d, h); dw_down[e] += dy^T act: (d, h).
  if ((err = grouped_gemm<T, T, false>(
           rows_problem(s, offsets, dy, s.d, w_down, s.h, false, dg, false), stream)))
    return err;
  if ((err = grouped_gemm<T, float, true>(reduce_problem(s, offsets, dy, s.d, act, s.h, dw_down),
                                          stream)))
    return err;
  if (n > 0) {
    swiglu_grad_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(
        n, static_cast<const T*>(g), static_cast<const T*>(u), dg, du);
  }
  if ((err = cudaGetLastError())) return err;
  // dw_gate[e] += dg^T x, dw_up[e] += du^T x: (h, d); dx = dg @ w_gate[e] + du @ w_up[e].
  if ((err = grouped_gemm<T, float, true>(reduce_problem(s, offsets, dg, s.h, x, s.d, dw_gate),
                                          stream)))
    return err;
  if ((err = grouped_gemm<T, float, true>(reduce_problem(s, offsets, du, s.h, x, s.d, dw_up),
                                          stream)))
    return err;
  if ((err = grouped_gemm<T, T, false>(
           rows_problem(s, offsets, dg, s.h, w_gate, s.d, false, dx, false), stream)))
    return err;
  return grouped_gemm<T, T, false>(rows_problem(s, offsets, du, s.h, w_up, s.d, false, dx, true),
                                   stream);
}

}  // namespace

cudaError_t swiglu_forward(DType dtype, const ExpertShape& s, const int32_t* offsets, const void* x,
                           const void* w_gate, const void* w_up, const void* w_down, void* g,
                           void* u, void* act, void* y, cudaStream_t stream) {
  if (s.rows < 0 || s.experts < 1 || s.d < 1 || s.h < 1) return cudaErrorInvalidValue;
  if (dtype == DType::F32)
    return forward_t<float>(s, offsets, x, w_gate, w_up, w_down, g, u, act, y, stream);
  return forward_t<__nv_bfloat16>(s, offsets, x, w_gate, w_up, w_down, g, u, act, y, stream);
}

size_t swiglu_backward_workspace_bytes(DType dtype, int64_t rows, int h) {
  const size_t elem = dtype == DType::F32 ? sizeof(float) : sizeof(__nv_bfloat16);
  return size_t(3) * size_t(rows) * size_t(h) * elem;
}

cudaError_t swiglu_backward(DType dtype, const ExpertShape& s, const int32_t* offsets,
                            const void* x, const void* w_gate, const void* w_up, const void* w_down,
                            const void* g, const void* u, const void* dy, void* workspace, void* dx,
                            float* dw_gate, float* dw_up, float* dw_down, cudaStream_t stream) {
  if (s.rows < 0 || s.experts < 1 || s.d < 1 || s.h < 1) return cudaErrorInvalidValue;
  if (dtype == DType::F32)
    return backward_t<float>(s, offsets, x, w_gate, w_up, w_down, g, u, dy, workspace, dx, dw_gate,
                             dw_up, dw_down, stream);
  return backward_t<__nv_bfloat16>(s, offsets, x, w_gate, w_up, w_down, g, u, dy, workspace, dx,
                                   dw_gate, dw_up, dw_down, stream);
}

}  // namespace unipool::kernels
