// BLAS sees column-major matrices: a row-major C = A @ B is C^T = B^T @ A^T, so the operands
// are passed swapped, each as 'N' (unit column stride) or 'T' (unit row stride) with its
// leading dimension, in the order of checks LibTorch's addmm_impl_cpu_ makes.
#include "model/blas_gemm.h"

#include <dlfcn.h>

#include <algorithm>

namespace unipool {

namespace {

using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*,
                         const float*, const int*, const float*, const int*, const float*, float*,
                         const int*);

SgemmFn blas_sgemm() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

// A (rows, cols) matrix with strides (s0, s1) as BLAS sees it, or false if neither works.
bool blas_operand(int64_t rows, int64_t cols, int64_t s0, int64_t s1, char* trans, int* ld) {
  if (s1 == 1 && s0 >= std::max<int64_t>(1, cols)) {
    *trans = 'N';
    *ld = int(s0);
    return true;
  }
  if (s0 == 1 && s1 >= std::max<int64_t>(1, rows)) {
    *trans = 'T';
    *ld = int(s1);
    return true;
  }
  return false;
}

// The sgemm_ call for one (M, N) output at `c` from `a` (M, K) and `b` (K, N), given the
// operands' flags; dim: the index of the rows' stride (0 for 2-D, 1 for a batch entry).
struct GemmPlan {
  char ta, tb;
  int lda, ldb, ldc, M, N, K;
  bool ok = false;
};

GemmPlan plan(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b, int dim) {
  GemmPlan p;
  if (!blas_sgemm() || out.scalar_type() != at::kFloat || a.scalar_type() != at::kFloat ||
      b.scalar_type() != at::kFloat || out.stride(dim + 1) != 1)
    return p;
  if (!blas_operand(a.size(dim), a.size(dim + 1), a.stride(dim), a.stride(dim + 1), &p.ta, &p.lda))
    return p;
  if (!blas_operand(b.size(dim), b.size(dim + 1), b.stride(dim), b.stride(dim + 1), &p.tb, &p.ldb))
    return p;
  p.M = int(out.size(dim));
  p.N = int(out.size(dim + 1));
  p.K = int(a.size(dim + 1));
  p.ldc = int(std::max<int64_t>(1, out.stride(dim)));
  p.ok = p.M > 0 && p.N > 0 && p.K > 0;
  return p;
}

void run(const GemmPlan& p, const float* a, const float* b, float* c, float beta) {
  const float alpha = 1.0f;
  blas_sgemm()(&p.tb, &p.ta, &p.N, &p.M, &p.K, &alpha, b, &p.ldb, a, &p.lda, &beta, c, &p.ldc);
}

}  // namespace

void gemm_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, float beta) {
  const GemmPlan p = plan(out, a, b, 0);
  if (p.ok) {
    run(p, a.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(), beta);
  } else if (beta == 0.0f) {
    at::mm_out(out, a, b);
  } else {
    out.addmm_(a, b);
  }
}

void bmm_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, float beta) {
  const GemmPlan p = plan(out, a, b, 1);
  if (!p.ok) {
    if (beta == 0.0f) {
      at::bmm_out(out, a, b);
    } else {
      out.baddbmm_(a, b);
    }
    return;
  }
  const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
  float* cp = out.data_ptr<float>();
  for (int64_t i = 0; i < out.size(0); ++i)
    run(p, ap + i * a.stride(0), bp + i * b.stride(0), cp + i * out.stride(0), beta);
}

}  // namespace unipool
