// BLAS sees column-major matrices: a row-major C = A @ B is C^T = B^T @ A^T, so the operands
// are passed swapped, each as 'N' (unit column stride) or 'T' (unit row stride) with its
// leading dimension, in the order of checks LibTorch's addmm_impl_cpu_ makes.
#include "model/blas_gemm.h"

#include <dlfcn.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>

#include "model/parallel_work.h"

namespace unipool {

namespace {

using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*,
                         const float*, const int*, const float*, const int*, const float*, float*,
                         const int*);

SgemmFn blas_sgemm() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

bool fits_int(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

// A (rows, cols) matrix with strides (s0, s1) as BLAS sees it, or false if neither works.
bool blas_operand(int64_t rows, int64_t cols, int64_t s0, int64_t s1, char* trans, int* ld) {
  if (s1 == 1 && s0 >= std::max<int64_t>(1, cols) && fits_int(s0)) {
    *trans = 'N';
    *ld = int(s0);
    return true;
  }
  if (s0 == 1 && s1 >= std::max<int64_t>(1, rows) && fits_int(s1)) {
    *trans = 'T';
    *ld = int(s1);
    return true;
  }
  return false;
}

// The sgemm_ call for one (M, N) output from a (M, K) and b (K, N), or ok = false where
// LibTorch should do it; dim: the rows' dimension (0 for 2-D, 1 for a batch entry).
struct GemmPlan {
  char ta, tb;
  int lda, ldb, ldc, M, N, K;
  bool ok = false;
};

GemmPlan plan(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b, int dim) {
  GemmPlan p;
  const int64_t M = out.size(dim), N = out.size(dim + 1), K = a.size(dim + 1);
  // Shapes LibTorch would refuse, other types and devices go to LibTorch (and its messages).
  // N = 1 too: LibTorch treats an (M, 1) result as column-major, a different BLAS call.
  if (!blas_sgemm() || out.scalar_type() != at::kFloat || a.scalar_type() != at::kFloat ||
      b.scalar_type() != at::kFloat || !out.device().is_cpu() || !a.device().is_cpu() ||
      !b.device().is_cpu() || a.size(dim) != M || b.size(dim) != K || b.size(dim + 1) != N ||
      M == 0 || N <= 1 || K == 0 || !fits_int(M) || !fits_int(N) || !fits_int(K))
    return p;
  // The result's rows: unit column stride and room for N columns (BLAS refuses ldc < N).
  if (out.stride(dim + 1) != 1 || out.stride(dim) < N || !fits_int(out.stride(dim))) return p;
  if (!blas_operand(a.size(dim), K, a.stride(dim), a.stride(dim + 1), &p.ta, &p.lda)) return p;
  if (!blas_operand(K, N, b.stride(dim), b.stride(dim + 1), &p.tb, &p.ldb)) return p;
  p.M = int(M);
  p.N = int(N);
  p.K = int(K);
  p.ldc = int(out.stride(dim));
  p.ok = true;
  return p;
}

void run(const GemmPlan& p, const float* a, const float* b, float* c, float beta) {
  const float alpha = 1.0f;
  blas_sgemm()(&p.tb, &p.ta, &p.N, &p.M, &p.K, &alpha, b, &p.ldb, a, &p.lda, &beta, c, &p.ldc);
}

// Below this many multiply-adds (~10 us at one core's SGEMM rate) a GEMM stays on one thread:
// waking the pool costs more than the split saves.
constexpr double kSplitMacs = double(1 << 20);
constexpr int kSplitAlign = 16;  // rows or columns per piece: a multiple of the kernels' tiles

// One GEMM cut into pieces of its result, one per thread: by rows when there are enough of
// them, else by columns. Each piece is the same BLAS call on a sub-matrix: every element's
// dot product runs over K in the same order, so splitting does not change the sums.
// a_row: a's stride between rows; b_col: b's stride between columns.
void run_split(const GemmPlan& p, const float* a, int64_t a_row, const float* b, int64_t b_col,
               float* c, float beta, int threads) {
  const bool by_rows = p.M >= 2 * kSplitAlign;
  const int64_t extent = by_rows ? p.M : p.N;
  const int64_t pieces = std::min<int64_t>(threads, std::max<int64_t>(1, extent / kSplitAlign));
  if (pieces < 2) {
    run(p, a, b, c, beta);
    return;
  }
  // Piece boundaries on kSplitAlign, the last piece taking the rest.
  const int64_t step = (extent / pieces + kSplitAlign - 1) / kSplitAlign * kSplitAlign;
  at::parallel_for(0, pieces, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t first = i * step, count = std::min(extent, first + step) - first;
      if (count <= 0) continue;
      GemmPlan piece = p;
      if (by_rows) {
        piece.M = int(count);
        run(piece, a + first * a_row, b, c + first * p.ldc, beta);
      } else {
        piece.N = int(count);
        run(piece, a, b + first * b_col, c + first, beta);
      }
    }
  });
}

}  // namespace

void gemm_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, float beta) {
  GemmPlan p;
  if (out.dim() == 2 && a.dim() == 2 && b.dim() == 2) p = plan(out, a, b, 0);
  if (p.ok) {
    const int threads = parallel_threads();
    if (threads > 1 && double(p.M) * p.N * p.K >= kSplitMacs) {
      run_split(p, a.data_ptr<float>(), a.stride(0), b.data_ptr<float>(), b.stride(1),
                out.data_ptr<float>(), beta, threads);
    } else {
      run(p, a.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(), beta);
    }
  } else if (beta == 0.0f) {
    at::mm_out(out, a, b);
  } else {
    out.addmm_(a, b, beta);
  }
}

void bmm_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, float beta) {
  GemmPlan p;
  // Below 400 multiply-adds an entry at::bmm runs its own loop, not BLAS: so do we.
  if (out.dim() == 3 && a.dim() == 3 && b.dim() == 3 && a.size(0) == out.size(0) &&
      b.size(0) == out.size(0) && out.size(1) * out.size(2) * a.size(2) >= 400)
    p = plan(out, a, b, 1);
  if (!p.ok) {
    if (beta == 0.0f) {
      at::bmm_out(out, a, b);
    } else {
      out.baddbmm_(a, b, beta);
    }
    return;
  }
  const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
  float* cp = out.data_ptr<float>();
  // Batch entries are independent GEMMs: shared among the threads whole, so each entry's
  // result is the one-thread result.
  const int64_t entries = out.size(0);
  const int64_t grain =
      std::max<int64_t>(1, int64_t(kSplitMacs / (double(p.M) * p.N * p.K)));  // per task
  at::parallel_for(0, entries, parallel_threads() > 1 ? grain : entries,
                   [&](int64_t begin, int64_t end) {
                     for (int64_t i = begin; i < end; ++i)
                       run(p, ap + i * a.stride(0), bp + i * b.stride(0),
                           cp + i * out.stride(0), beta);
                   });
}

}  // namespace unipool
