// UniPool-lock's partition (SPEC section 8.2): which layer owns each expert of the pool,
// solved as a small exact integer program with GLPK. Private to core/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace unipool {

struct Partition {
  int n_layers = 0, n_experts = 0, per_layer = 0;  // L, N, K
  std::vector<int> owner;                          // (N): the layer that owns each expert
  std::vector<std::vector<int>> owned;             // (L, K): each layer's experts, ascending
  std::vector<double> coverage;  // (L): share of the layer's counts its experts keep
  std::vector<double> deficit;   // (L): max(0, target - coverage); all 0 when feasible
  bool coverage_met = true;      // false: the transportation fallback was taken
  int64_t rank_sum = 0;          // objective of the coverage program (when met)
  bool empty() const { return owner.empty(); }
  bool owns(int layer, int expert) const { return owner[size_t(expert)] == layer; }
};

// Ranks of SPEC 8.2: r[l][e] = position of e in layer l's counts sorted descending, ties to
// the lower id. counts: (L, N) row-major -> (L, N).
std::vector<int> routing_ranks(const std::vector<double>& counts, int n_layers, int n_experts);

// The partition of least rank sum among those where every layer keeps >= `coverage` of its
// counts (each layer exactly K = N / L experts, each expert one owner). When none exists, the
// one that maximises sum_l (covered_l / total_l) (a transportation problem), with each
// layer's deficit reported. counts: (L, N) row-major, >= 0. Deterministic for its input.
Partition solve_partition(const std::vector<double>& counts, int n_layers, int n_experts,
                          double coverage);

// The paper's control: a random disjoint partition (K experts per layer) from `seed`.
Partition random_partition(int n_layers, int n_experts, uint64_t seed);

// Fills coverage and deficit of `p` for `counts` (L, N).
void measure_coverage(Partition& p, const std::vector<double>& counts, double target);

}  // namespace unipool
