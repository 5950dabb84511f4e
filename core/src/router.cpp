// Routing (SPEC section 3) and the balance loss (SPEC section 4).
#include <cmath>
#include <numeric>

#include "model.h"
#include "rng.h"

namespace unipool {

at::Tensor random_experts(int64_t tokens, int mg, int k, uint64_t seed) {
  at::Tensor out = at::empty({tokens, k}, at::TensorOptions().dtype(at::kLong));
  int64_t* op = out.data_ptr<int64_t>();
  std::vector<int64_t> pool(static_cast<size_t>(mg));
  for (int64_t t = 0; t < tokens; ++t) {
    Rng rng(hash_u64(seed, uint64_t(t)));
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
    for (int64_t t = 0; t < T; ++t) {
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
  return out;
}

RouterOutput route_tokens(const ModelConfig& c, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& scale, bool random, uint64_t random_seed) {
  RouterOutput r;
  r.logits = at::mm(x, weight.t());  // (T, Mg)
  if (c.router == "norm") {
    // NormRouter (paper Eq. 7): s = scale * c * relu(z / (||z|| + 1e-8)).
    const at::Tensor norm = r.logits.norm(2, {1}, /*keepdim=*/true);
    r.scores = at::relu(r.logits / (norm + 1e-8)) * (scale * c.router_c);
  } else {
    r.scores = at::softmax(r.logits, 1);
  }
  const at::Tensor top = top_k_lowest_index(r.scores, c.top_k);  // (T, k)
  at::Tensor learned = r.scores.gather(1, top);                  // (T, k) differentiable
  // clamp: all-zero NormRouter scores would give 0/0; their gates stay 0 instead.
  if (c.renormalize_gates) learned = learned / learned.sum(1, true).clamp_min(1e-30);
  if (!random) {
    r.local = top;
    r.gates = learned;
    return r;
  }
  // Random routing keeps the learned output scale: each gate is the learned gates' sum / k.
  r.local = random_experts(x.size(0), c.experts_per_group, c.top_k, random_seed);
  r.gates = (learned.sum(1, true) / double(c.top_k)).expand({x.size(0), c.top_k});
  return r;
}

at::Tensor balance_loss(const ModelConfig& c, const std::vector<at::Tensor>& f,
                        const std::vector<at::Tensor>& P) {
  const auto options = P.front().options();
  if (c.balance == "none" || c.aux_coef == 0.0) return at::zeros({}, options);
  const double mg = c.experts_per_group;
  if (c.balance == "layer") {
    at::Tensor total = at::zeros({}, options);
    for (size_t l = 0; l < P.size(); ++l) total = total + mg * (f[l] * P[l]).sum();
    return total * (c.aux_coef / double(P.size()));
  }
  // Pool balance (paper Eqs. 4-6): average f and P over each group's layers, then Mg * <fbar,
  // Pbar>.
  const int G = c.layers_per_group, groups = c.n_groups();
  at::Tensor total = at::zeros({}, options);
  for (int g = 0; g < groups; ++g) {
    at::Tensor fbar = f[size_t(g * G)], pbar = P[size_t(g * G)];
    for (int j = 1; j < G; ++j) {
      fbar = fbar + f[size_t(g * G + j)];
      pbar = pbar + P[size_t(g * G + j)];
    }
    total = total + mg * ((fbar / double(G)) * (pbar / double(G))).sum();
  }
  return total * (c.aux_coef / double(groups));
}

}  // namespace unipool
