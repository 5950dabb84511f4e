// Moving rows between token order and expert-sorted order: the gather before the experts, the
// gate-weighted combine after them, and the combine's backward. Every output element is
// written by one thread with no atomics, so results do not depend on scheduling.
#include "common.cuh"
#include "unipool/kernels.h"

namespace unipool::kernels {
namespace {

using namespace detail;

constexpr int kThreads = 256;

// One block per sorted row r: x_sorted[r] = x[sorted_slot[r] / k].
template <typename T>
__global__ void gather_rows_kernel(int k, int d, const T* __restrict__ x,
                                   const int32_t* __restrict__ sorted_slot,
                                   T* __restrict__ x_sorted) {
  const int64_t r = blockIdx.x;
  const T* src = x + int64_t(sorted_slot[r] / k) * d;
  T* dst = x_sorted + r * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) dst[c] = src[c];
}

// One block per token t: out[t] = sum_j gates[t k + j] * y[slot_row[t k + j]].
template <typename T>
__global__ void combine_forward_kernel(int k, int d, const T* __restrict__ y,
                                       const int32_t* __restrict__ slot_row,
                                       const float* __restrict__ gates, T* __restrict__ out) {
  const int64_t t = blockIdx.x;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) {
      const int64_t a = t * k + j;
      const float w = gates ? gates[a] : 1.0f;
      acc = fmaf(w, to_float(y[int64_t(slot_row[a]) * d + c]), acc);
    }
    out[t * d + c] = from_float<T>(acc);
  }
}

// One block per sorted row r (slot a, token t = a / k): dy[r] = gates[a] * dout[t] and
// grad_gates[a] = <dout[t], y[r]>.
template <typename T>
__global__ void combine_backward_kernel(int k, int d, const T* __restrict__ y,
                                        const int32_t* __restrict__ sorted_slot,
                                        const float* __restrict__ gates, const T* __restrict__ dout,
                                        T* __restrict__ dy, float* __restrict__ grad_gates) {
  __shared__ float buf[32];
  const int64_t r = blockIdx.x;
  const int64_t a = sorted_slot[r];
  const T* go = dout + (a / k) * d;
  const T* yr = y + r * d;
  T* dyr = dy + r * d;
  const float w = gates[a];
  float dot = 0.0f;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    const float gv = to_float(go[c]);
    dyr[c] = from_float<T>(w * gv);
    dot = fmaf(gv, to_float(yr[c]), dot);
  }
  dot = block_sum(dot, buf);
  if (threadIdx.x == 0) grad_gates[a] = dot;
}

template <typename T>
cudaError_t launch_gather(int64_t slots, int k, int d, const void* x, const int32_t* sorted_slot,
                          void* x_sorted, cudaStream_t stream) {
  gather_rows_kernel<T><<<unsigned(slots), kThreads, 0, stream>>>(
      k, d, static_cast<const T*>(x), sorted_slot, static_cast<T*>(x_sorted));
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_combine(int64_t tokens, int k, int d, const void* y, const int32_t* slot_row,
                           const float* gates, void* out, cudaStream_t stream) {
  combine_forward_kernel<T><<<unsigned(tokens), kThreads, 0, stream>>>(
      k, d, static_cast<const T*>(y), slot_row, gates, static_cast<T*>(out));
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_combine_backward(int64_t slots, int k, int d, const void* y,
                                    const int32_t* sorted_slot, const float* gates,
                                    const void* dout, void* dy, float* grad_gates,
                                    cudaStream_t stream) {
  combine_backward_kernel<T><<<unsigned(slots), kThreads, 0, stream>>>(
      k, d, static_cast<const T*>(y), sorted_slot, gates, static_cast<const T*>(dout),
      static_cast<T*>(dy), grad_gates);
  return cudaGetLastError();
}

// Grid x holds up to 2^31 - 1 blocks; rows beyond that are not expected (tokens per step).
bool bad_sizes(int64_t n, int k, int d) { return n < 0 || n > INT32_MAX || k < 1 || d < 1; }

}  // namespace

cudaError_t gather_rows(DType dtype, int64_t slots, int k, int d, const void* x,
                        const int32_t* sorted_slot, void* x_sorted, cudaStream_t stream) {
  if (bad_sizes(slots, k, d)) return cudaErrorInvalidValue;
  if (slots == 0) return cudaSuccess;
  return dtype == DType::F32
             ? launch_gather<float>(slots, k, d, x, sorted_slot, x_sorted, stream)
             : launch_gather<__nv_bfloat16>(slots, k, d, x, sorted_slot, x_sorted, stream);
}

cudaError_t combine_forward(DType dtype, int64_t tokens, int k, int d, const void* y,
                            const int32_t* slot_row, const float* gates, void* out,
                            cudaStream_t stream) {
  if (bad_sizes(tokens, k, d)) return cudaErrorInvalidValue;
  if (tokens == 0) return cudaSuccess;
  return dtype == DType::F32
             ? launch_combine<float>(tokens, k, d, y, slot_row, gates, out, stream)
             : launch_combine<__nv_bfloat16>(tokens, k, d, y, slot_row, gates, out, stream);
}

cudaError_t combine_backward(DType dtype, int64_t tokens, int k, int d, const void* y,
                             const int32_t* sorted_slot, const float* gates, const void* dout,
                             void* dy, float* grad_gates, cudaStream_t stream) {
  const int64_t slots = tokens * k;
  if (bad_sizes(slots, k, d)) return cudaErrorInvalidValue;
  if (slots == 0) return cudaSuccess;
  return dtype == DType::F32
             ? launch_combine_backward<float>(slots, k, d, y, sorted_slot, gates, dout, dy,
                                              grad_gates, stream)
             : launch_combine_backward<__nv_bfloat16>(slots, k, d, y, sorted_slot, gates, dout, dy,
                                                      grad_gates, stream);
}

}  // namespace unipool::kernels
