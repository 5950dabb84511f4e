// Plain LibTorch references of the GPU MoE kernels; see moe_reference.h.
#include "model/moe_reference.h"

#include <numeric>
#include <vector>

#include "unipool/random.h"

namespace unipool::moe_ref {

at::Tensor random_choice(int64_t tokens, int experts, int k, uint64_t seed) {
  TORCH_CHECK(k >= 1 && k <= experts, "random_choice: need 1 <= k <= experts");
  at::Tensor out = at::empty({tokens, k}, at::TensorOptions().dtype(at::kLong));
  int64_t* op = out.data_ptr<int64_t>();
  std::vector<int64_t> pool(static_cast<size_t>(experts));
  for (int64_t t = 0; t < tokens; ++t) {
    Rng rng(hash_u64(seed, uint64_t(t)));
    std::iota(pool.begin(), pool.end(), 0);
    for (int j = 0; j < k; ++j) {
      // k == 1 is this loop's first step: one draw, below(experts).
      const size_t pick = size_t(j) + size_t(rng.below(uint64_t(experts - j)));
      std::swap(pool[size_t(j)], pool[pick]);
      op[t * k + j] = pool[size_t(j)];
    }
  }
  return out;
}

Route route(const at::Tensor& logits, const at::Tensor& scale, const RouteSpec& spec) {
  const int64_t T = logits.size(0), k = spec.top_k;
  Route r;
  if (spec.norm) {
    const at::Tensor norm = logits.norm(2, {1}, /*keepdim=*/true);  // (T, 1)
    r.scores = at::relu(logits / (norm + 1e-8)) * (scale * spec.router_c);
  } else {
    r.scores = at::softmax(logits, 1);
  }
  // A stable descending sort puts equal scores in index order: ties go to the lower index.
  const auto sorted = at::sort(r.scores.detach(), /*stable=*/true, /*dim=*/1, /*descending=*/true);
  r.top = std::get<1>(sorted).narrow(1, 0, k).contiguous();  // (T, k)
  at::Tensor learned = r.scores.gather(1, r.top);            // (T, k)
  if (spec.renormalize) learned = learned / learned.sum(1, true).clamp_min(1e-30);
  if (!spec.random) {
    r.local = r.top;
    r.gates = learned;
    return r;
  }
  r.local = random_choice(T, int(logits.size(1)), int(k), spec.seed).to(logits.device());
  r.gates = (learned.sum(1, true) / double(k)).expand({T, k});
  return r;
}

Permutation permute(const at::Tensor& expert_in, int64_t experts) {
  const at::Tensor expert = expert_in.to(at::kLong).reshape({-1});
  const int64_t A = expert.numel();
  Permutation p;
  p.counts = at::bincount(expert, /*weights=*/{}, experts);  // (E)
  p.offsets = at::cat({at::zeros({1}, p.counts.options()), p.counts.cumsum(0)});
  // Stable sort by expert: slots keep their order within an expert.
  p.sorted_slot = std::get<1>(at::sort(expert, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  p.slot_row = at::empty_like(p.sorted_slot);
  p.slot_row.index_put_({p.sorted_slot}, at::arange(A, p.sorted_slot.options()));
  return p;
}

at::Tensor gather_rows(const at::Tensor& x, const at::Tensor& sorted_slot, int64_t k) {
  return x.index_select(0, at::div(sorted_slot.to(at::kLong), k, "floor"));
}

at::Tensor grouped_swiglu(const at::Tensor& x_sorted, const at::Tensor& counts_in,
                          const at::Tensor& w_gate, const at::Tensor& w_up,
                          const at::Tensor& w_down) {
  const at::Tensor counts = counts_in.to(at::kCPU).to(at::kLong);
  const int64_t E = w_gate.size(0);
  TORCH_CHECK(counts.numel() == E, "grouped_swiglu: one count per expert");
  std::vector<at::Tensor> parts;
  int64_t offset = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t c = counts[e].item<int64_t>();
    if (c == 0) continue;
    const at::Tensor xe = x_sorted.narrow(0, offset, c);  // (c, d)
    const at::Tensor act = at::silu(at::matmul(xe, w_gate[e].t())) * at::matmul(xe, w_up[e].t());
    parts.push_back(at::matmul(act, w_down[e].t()));  // (c, d)
    offset += c;
  }
  TORCH_CHECK(offset == x_sorted.size(0), "grouped_swiglu: counts must sum to the rows");
  if (parts.empty()) return at::zeros_like(x_sorted);
  return at::cat(parts, 0);
}

at::Tensor combine(const at::Tensor& y_sorted, const at::Tensor& gates,
                   const at::Tensor& slot_row) {
  const int64_t T = gates.size(0), k = gates.size(1), d = y_sorted.size(1);
  const at::Tensor rows = y_sorted.index_select(0, slot_row.to(at::kLong)).view({T, k, d});
  return (rows * gates.unsqueeze(-1).to(rows.scalar_type())).sum(1);
}

at::Tensor moe_block(const at::Tensor& x, const at::Tensor& local, const at::Tensor& gates,
                     const at::Tensor& w_gate, const at::Tensor& w_up, const at::Tensor& w_down) {
  const int64_t k = local.size(1);
  const Permutation p = permute(local.reshape({-1}), w_gate.size(0));
  const at::Tensor y =
      grouped_swiglu(gather_rows(x, p.sorted_slot, k), p.counts, w_gate, w_up, w_down);
  return combine(y, gates, p.slot_row);
}

}  // namespace unipool::moe_ref
