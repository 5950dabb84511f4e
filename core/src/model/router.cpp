// Routing (SPEC section 3): router scores, top-k with ties to the lower index, random routing.
#include "model/router.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "model/backend.h"
#include "model/norm_router.h"
#include "unipool/random.h"

namespace unipool {

at::Tensor random_experts(int64_t tokens, int mg, int k, uint64_t seed, int64_t first_token) {
  at::Tensor out = at::empty({tokens, k}, at::TensorOptions().dtype(at::kLong));
  int64_t* op = out.data_ptr<int64_t>();
  std::vector<int64_t> pool(static_cast<size_t>(mg));
  for (int64_t t = 0; t < tokens; ++t) {
    Rng rng(hash_u64(seed, uint64_t(first_token + t)));
    if (k == 1) {
      op[t] = int64_t(rng.below(uint64_t(mg)));
      continue;
    }
    // Partial Fisher-Yates: the first k entries become k distinct uniform choices.
    std::iota(pool.begin(), pool.end(), 0);
    for (int j = 0; j < k; ++j) {
      const size_t pick = size_t(j) + size_t(rng.below(uint64_t(mg - j)));
      std::swap(pool[size_t(j)], pool[pick]);
      op[t * k + j] = pool[size_t(j)];
    }
  }
  return out;
}

at::Tensor top_k_lowest_index(const at::Tensor& scores_in, int k) {
  const at::Tensor scores = scores_in.detach().contiguous();
  const int64_t T = scores.size(0), M = scores.size(1);
  at::Tensor out = at::empty({T, k}, at::TensorOptions().dtype(at::kLong));
  int64_t* op = out.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "top_k", [&] {
    const scalar_t* sp = scores.data_ptr<scalar_t>();
    at::parallel_for(0, T, 256, [&](int64_t begin, int64_t end) {  // tokens are independent
      for (int64_t t = begin; t < end; ++t) {
        const scalar_t* row = sp + t * M;
        int64_t* chosen = op + t * k;
        // Insertion into a sorted list of k: strict '>' keeps the lower index on ties.
        int filled = 0;
        for (int64_t i = 0; i < M; ++i) {
          int pos = filled;
          while (pos > 0 && row[i] > row[chosen[pos - 1]]) --pos;
          if (pos >= k) continue;
          for (int j = std::min(filled, k - 1); j > pos; --j) chosen[j] = chosen[j - 1];
          chosen[pos] = i;
          filled = std::min(filled + 1, k);
        }
      }
    });
  });
  return out;
}

RouterOutput route_tokens(const ModelConfig& c, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& scale, bool random, uint64_t random_seed,
                          const LayerLock& lock) {
  return route_tokens(fused_cpu_backend(), c, x, weight, scale, random, random_seed, lock);
}

RouterOutput route_tokens(const StepBackend& ops, const ModelConfig& c, const at::Tensor& x,
                          const at::Tensor& weight, const at::Tensor& scale, bool random,
                          uint64_t random_seed, const LayerLock& lock, int64_t first_token) {
  RouterOutput r;
  r.logits = at::mm(x, weight.t());  // (T, Mg), fp32 even in bf16 runs: routing decides
  const bool locked = lock.owned && lock.alpha >= 1.0;
  if (locked)
    r.owned = at::tensor(*lock.owned, at::TensorOptions().dtype(at::kLong)).to(x.device());  // (K)
  if (c.router == "norm") {
    // NormRouter (paper Eq. 7): s = scale * c * relu(z / (||z|| + 1e-8)). The norm covers all
    // Mg logits even when locked (SPEC 8.4); a locked layer's scores outside its partition
    // are exactly 0, so only its K columns are computed (the compact step).
    r.scores = ops.norm_router_scores(r.logits, scale, c.router_c, locked ? r.owned : at::Tensor());
  } else {
    r.scores = at::softmax(r.logits, 1);
    if (locked) r.scores = r.scores.index_select(1, r.owned);
  }
  if (lock.owned && lock.alpha > 0.0 && !locked) {
    // SPEC 8.3: during the fade, outside scores times (1 - alpha).
    std::vector<float> keep(size_t(c.experts_per_group), float(1.0 - lock.alpha));
    for (int64_t e : *lock.owned) keep[size_t(e)] = 1.0f;
    r.scores = r.scores * at::tensor(keep).to(r.scores.device(), r.scores.scalar_type());
  }
  const int k = c.top_k;
  // A locked layer chooses among its K experts only: (T, K) scores, ids mapped back. Ties
  // still go to the lower id (the owned list is ascending).
  const at::Tensor& owned = r.owned;
  const at::Tensor& choose_from = r.scores;
  const at::Tensor top = ops.top_k(choose_from, k);  // (T, k) columns of choose_from
  at::Tensor learned = choose_from.gather(1, top);   // (T, k) differentiable
  // clamp: all-zero NormRouter scores would give 0/0; their gates stay 0 instead.
  if (c.renormalize_gates) learned = learned / learned.sum(1, true).clamp_min(1e-30);
  const int64_t choices = owned.defined() ? owned.size(0) : c.experts_per_group;
  at::Tensor chosen =
      random ? random_experts(x.size(0), int(choices), k, random_seed, first_token).to(x.device())
             : top;
  r.local =
      owned.defined() ? owned.index_select(0, chosen.reshape({-1})).view(chosen.sizes()) : chosen;
  // Random routing keeps the learned output scale: each gate is the learned gates' sum / k.
  r.gates = random ? (learned.sum(1, true) / double(k)).expand({x.size(0), k}) : learned;
  return r;
}

at::Tensor pool_mean_scores(const RouterOutput& r, const at::Tensor& mean, int experts_per_group) {
  if (!r.owned.defined()) return mean;
  return at::zeros({experts_per_group}, mean.options()).index_copy(0, r.owned, mean);
}

double router_entropy_sum(const at::Tensor& scores_in) {
  const at::Tensor s = scores_in.detach().to(at::kCPU).to(at::kDouble).contiguous();
  const int64_t T = s.size(0), M = s.size(1);
  if (M < 2) return double(T);
  const double* p = s.data_ptr<double>();
  const double log_m = std::log(double(M));
  // Each row's entropy on the compute threads (T x M logs), then summed in row order, so the
  // total does not depend on the thread count.
  std::vector<double> row_h(static_cast<size_t>(T), 0.0);
  at::parallel_for(0, T, 256, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const double* row = p + t * M;
      double sum = 0.0, h = 0.0;
      for (int64_t i = 0; i < M; ++i) sum += row[i];
      if (sum <= 0.0) continue;
      for (int64_t i = 0; i < M; ++i) {
        const double q = row[i] / sum;
        if (q > 0.0) h -= q * std::log(q);
      }
      row_h[size_t(t)] = h / log_m;
    }
  });
  double total = 0.0;
  for (double h : row_h) total += h;
  return total;
}

}  // namespace unipool
