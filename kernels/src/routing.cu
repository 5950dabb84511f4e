// Routing (SPEC section 3), fused: scores, top-k, gates and random routing in one kernel,
// one warp per token; the backward turns gate gradients into logit and scale gradients.
#include "common.cuh"
#include "unipool/kernels.h"

namespace unipool::kernels {
namespace {

using namespace detail;

constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float relu_keep_nan(float v) { return (v > 0.0f || v != v) ? v : 0.0f; }

// Argmax over the warp: larger value wins, equal values go to the lower index (the CPU
// engine's top_k_lowest_index). idx < 0 marks "nothing yet".
__device__ __forceinline__ void warp_argmax(float& best, int& idx) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    const bool take = oi >= 0 && (idx < 0 || ov > best || (ov == best && oi < idx));
    if (take) {
      best = ov;
      idx = oi;
    }
  }
}

// Experts [0, k) of a partial Fisher-Yates over [0, Mg), storing only the swapped entries:
// the same draws as random_experts() in core/src/router.cpp.
__device__ void random_choice(uint64_t seed, int64_t t, int mg, int k, int* out) {
  Rng rng{hash_u64(seed, uint64_t(t))};
  if (k == 1) {
    out[0] = int(rng.below(uint64_t(mg)));
    return;
  }
  int key[2 * kMaxTopK], val[2 * kMaxTopK], n = 0;  // pool[key[i]] == val[i]; else pool[p] == p
  auto get = [&](int p) {
    for (int i = 0; i < n; ++i)
      if (key[i] == p) return val[i];
    return p;
  };
  auto set = [&](int p, int v) {
    for (int i = 0; i < n; ++i)
      if (key[i] == p) {
        val[i] = v;
        return;
      }
    key[n] = p;
    val[n++] = v;
  };
  for (int j = 0; j < k; ++j) {
    const int pick = j + int(rng.below(uint64_t(mg - j)));
    const int vj = get(j), vp = get(pick);
    set(j, vp);
    set(pick, vj);
    out[j] = vp;
  }
}

__global__ void route_forward_kernel(RouteParams p, const float* __restrict__ logits,
                                     const float* __restrict__ scale, float* __restrict__ scores,
                                     int32_t* __restrict__ top, int32_t* __restrict__ local,
                                     float* __restrict__ gates) {
  const int lane = threadIdx.x & 31;
  const int64_t t = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (t >= p.tokens) return;  // whole warps leave together
  const int M = p.experts, k = p.top_k;
  const float* z = logits + t * M;  // (Mg)
  float* s = scores + t * M;        // (Mg)
  if (p.router == Router::Norm) {
    float sq = 0.0f;
    for (int i = lane; i < M; i += 32) sq += z[i] * z[i];
    const float denom = sqrtf(warp_sum(sq)) + 1e-8f;
    const float m = scale[0] * p.router_c;
    for (int i = lane; i < M; i += 32) s[i] = relu_keep_nan(z[i] / denom) * m;
  } else {
    float mx = -INFINITY;
    for (int i = lane; i < M; i += 32) mx = fmaxf(mx, z[i]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int i = lane; i < M; i += 32) sum += expf(z[i] - mx);
    const float inv = 1.0f / warp_sum(sum);
    for (int i = lane; i < M; i += 32) s[i] = expf(z[i] - mx) * inv;
  }
  __syncwarp();  // the lanes read each other's scores below

  int chosen[kMaxTopK];
  float learned[kMaxTopK];
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) {
    float best = 0.0f;
    int idx = -1;
    for (int i = lane; i < M; i += 32) {
      bool taken = false;
      for (int q = 0; q < j; ++q) taken |= chosen[q] == i;
      if (!taken && (idx < 0 || s[i] > best)) {  // strict '>': lower index keeps ties
        best = s[i];
        idx = i;
      }
    }
    warp_argmax(best, idx);
    chosen[j] = idx;
    learned[j] = best;
    sum += best;
  }
  if (lane != 0) return;
  if (p.renormalize) {
    const float denom = fmaxf(sum, 1e-30f);  // all-zero NormRouter scores keep gates 0
    sum = 0.0f;
    for (int j = 0; j < k; ++j) {
      learned[j] = learned[j] / denom;
      sum += learned[j];
    }
  }
  int used[kMaxTopK];
  if (p.random) {
    random_choice(p.seed, t, M, k, used);
  } else {
    for (int j = 0; j < k; ++j) used[j] = chosen[j];
  }
  for (int j = 0; j < k; ++j) {
    top[t * k + j] = chosen[j];
    local[t * k + j] = used[j];
    // Random routing keeps the layer's output scale: every gate is the learned gates' sum / k.
    gates[t * k + j] = p.random ? sum / float(k) : learned[j];
  }
}

__global__ void route_backward_kernel(RouteParams p, const float* __restrict__ logits,
                                      const float* __restrict__ scale,
                                      const float* __restrict__ scores,
                                      const int32_t* __restrict__ top,
                                      const float* __restrict__ grad_gates,
                                      float* __restrict__ grad_logits, float* grad_scale) {
  __shared__ float scale_part[kWarpsPerBlock];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t t = int64_t(blockIdx.x) * kWarpsPerBlock + warp;
  const bool valid = t < p.tokens;  // no early return: the block reduces below
  const int M = p.experts, k = p.top_k;
  float dscale = 0.0f;
  if (valid) {
    const float* z = logits + t * M;
    const float* s = scores + t * M;
    float* dz = grad_logits + t * M;
    int idx[kMaxTopK];
    float dl[kMaxTopK], st[kMaxTopK], ds[kMaxTopK];
    float total = 0.0f;
    for (int j = 0; j < k; ++j) {
      idx[j] = top[t * k + j];
      dl[j] = grad_gates[t * k + j];
      st[j] = s[idx[j]];
      total += dl[j];
    }
    // Random routing: every gate is sum(learned) / k, so each learned gate gets sum(dg) / k.
    if (p.random)
      for (int j = 0; j < k; ++j) dl[j] = total / float(k);
    if (p.renormalize) {
      float S = 0.0f, dot = 0.0f;
      for (int j = 0; j < k; ++j) {
        S += st[j];
        dot += dl[j] * st[j];
      }
      const float Sp = fmaxf(S, 1e-30f);
      // clamp_min passes no gradient to S when it clamps (as autograd does on CPU).
      const float corr = S >= 1e-30f ? dot / (Sp * Sp) : 0.0f;
      for (int j = 0; j < k; ++j) ds[j] = dl[j] / Sp - corr;
    } else {
      for (int j = 0; j < k; ++j) ds[j] = dl[j];
    }
    if (p.router == Router::Norm) {
      float sq = 0.0f;
      for (int i = lane; i < M; i += 32) sq += z[i] * z[i];
      const float n = sqrtf(warp_sum(sq)), den = n + 1e-8f;
      const float m = scale[0] * p.router_c;
      // du_j = ds_j * m where u_j = z_j / den > 0; only the chosen entries carry gradient.
      float du[kMaxTopK], dot = 0.0f;
      for (int j = 0; j < k; ++j) {
        const float u = z[idx[j]] / den;
        du[j] = u > 0.0f ? ds[j] * m : 0.0f;
        dot += du[j] * z[idx[j]];
        dscale += ds[j] * p.router_c * relu_keep_nan(u);
      }
      const float radial = n > 0.0f ? dot / (den * den * n) : 0.0f;
      for (int i = lane; i < M; i += 32) {
        float g = -z[i] * radial;
        for (int j = 0; j < k; ++j)
          if (idx[j] == i) g += du[j] / den;
        dz[i] = g;
      }
    } else {
      float dot = 0.0f;
      for (int j = 0; j < k; ++j) dot += ds[j] * st[j];
      for (int i = lane; i < M; i += 32) {
        float g = -dot;
        for (int j = 0; j < k; ++j)
          if (idx[j] == i) g += ds[j];
        dz[i] = s[i] * g;
      }
    }
  }
  if (p.router != Router::Norm || grad_scale == nullptr) return;  // uniform over the block
  if (lane == 0) scale_part[warp] = valid ? dscale : 0.0f;
  __syncthreads();
  if (threadIdx.x == 0) {
    float b = 0.0f;
    for (int w = 0; w < kWarpsPerBlock; ++w) b += scale_part[w];
    atomicAdd(grad_scale, b);
  }
}

bool bad_params(const RouteParams& p) {
  return p.tokens < 0 || p.experts < 1 || p.top_k < 1 || p.top_k > kMaxTopK || p.top_k > p.experts;
}

}  // namespace

cudaError_t route_forward(const RouteParams& p, const float* logits, const float* scale,
                          float* scores, int32_t* top, int32_t* local, float* gates,
                          cudaStream_t stream) {
  if (bad_params(p) || (p.router == Router::Norm && scale == nullptr)) return cudaErrorInvalidValue;
  if (p.tokens == 0) return cudaSuccess;
  route_forward_kernel<<<detail::blocks_for(p.tokens, kWarpsPerBlock), 32 * kWarpsPerBlock, 0,
                         stream>>>(p, logits, scale, scores, top, local, gates);
  return cudaGetLastError();
}

cudaError_t route_backward(const RouteParams& p, const float* logits, const float* scale,
                           const float* scores, const int32_t* top, const float* grad_gates,
                           float* grad_logits, float* grad_scale, cudaStream_t stream) {
  if (bad_params(p) || (p.router == Router::Norm && scale == nullptr)) return cudaErrorInvalidValue;
  if (p.tokens == 0) return cudaSuccess;
  route_backward_kernel<<<detail::blocks_for(p.tokens, kWarpsPerBlock), 32 * kWarpsPerBlock, 0,
                          stream>>>(p, logits, scale, scores, top, grad_gates, grad_logits,
                                    grad_scale);
  return cudaGetLastError();
}

}  // namespace unipool::kernels
