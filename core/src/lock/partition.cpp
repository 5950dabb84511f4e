// The ownership program of SPEC 8.2 on GLPK (an exact MILP solver; mip_gap 0).
//
// Variables x[l][e] in {0,1}, one per (layer, expert), L x N of them (a few hundred).
// Rows: sum_e x[l][e] = K for each layer; sum_l x[l][e] = 1 for each expert; and, for the
// coverage program, sum_e C[l][e] x[l][e] >= coverage * sum_e C[l][e] for each layer.
// Objective: the rank sum. SPEC's tie cost 1e-7 (r + 1 + (e+1)/(N+1)) adds the same amount to
// every feasible partition of a given rank sum (each expert has exactly one owner, so the
// (e+1) terms sum to a constant and the r terms follow the rank sum): it never changes which
// partitions are optimal, so the program minimises the integer rank sum alone, exactly.
#include "lock/partition.h"

#include <glpk.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>

#include "unipool/random.h"

namespace unipool {

namespace {

struct ProblemDeleter {
  void operator()(glp_prob* p) const { glp_delete_prob(p); }
};

// Builds the assignment rows over x[l][e] (column 1 + l * N + e) and solves with `objective`
// (minimised) plus optional coverage rows. Returns false when the program is infeasible.
bool solve_assignment(int L, int N, int K, const std::vector<double>& objective,
                      const std::vector<double>* counts, double coverage, std::vector<int>* owner,
                      double* value) {
  std::unique_ptr<glp_prob, ProblemDeleter> lp(glp_create_prob());
  glp_set_obj_dir(lp.get(), GLP_MIN);
  const int cols = L * N;
  glp_add_cols(lp.get(), cols);
  for (int j = 1; j <= cols; ++j) {
    glp_set_col_kind(lp.get(), j, GLP_BV);
    glp_set_obj_coef(lp.get(), j, objective[size_t(j - 1)]);
  }
  const int rows = L + N + (counts ? L : 0);
  glp_add_rows(lp.get(), rows);
  std::vector<int> ia(1), ja(1);
  std::vector<double> ar(1);
  auto entry = [&](int row, int col, double v) {
    ia.push_back(row);
    ja.push_back(col);
    ar.push_back(v);
  };
  for (int l = 0; l < L; ++l) {  // each layer owns exactly K experts
    glp_set_row_bnds(lp.get(), 1 + l, GLP_FX, K, K);
    for (int e = 0; e < N; ++e) entry(1 + l, 1 + l * N + e, 1.0);
  }
  for (int e = 0; e < N; ++e) {  // each expert has exactly one owner
    glp_set_row_bnds(lp.get(), 1 + L + e, GLP_FX, 1, 1);
    for (int l = 0; l < L; ++l) entry(1 + L + e, 1 + l * N + e, 1.0);
  }
  if (counts) {  // each layer keeps >= coverage of its counts
    for (int l = 0; l < L; ++l) {
      double total = 0;
      for (int e = 0; e < N; ++e) total += (*counts)[size_t(l * N + e)];
      glp_set_row_bnds(lp.get(), 1 + L + N + l, GLP_LO, coverage * total, 0.0);
      for (int e = 0; e < N; ++e) entry(1 + L + N + l, 1 + l * N + e, (*counts)[size_t(l * N + e)]);
    }
  }
  glp_load_matrix(lp.get(), int(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  glp_iocp parm;
  glp_init_iocp(&parm);
  parm.presolve = GLP_ON;  // also answers "no integer solution" without a separate LP
  parm.mip_gap = 0.0;
  parm.msg_lev = GLP_MSG_OFF;
  const int rc = glp_intopt(lp.get(), &parm);
  const int status = glp_mip_status(lp.get());
  if (status == GLP_NOFEAS || rc == GLP_ENOPFS || rc == GLP_ENODFS) return false;
  if (rc != 0 || status != GLP_OPT) {
    throw std::runtime_error("partition: GLPK stopped without an optimum (code " +
                             std::to_string(rc) + ", status " + std::to_string(status) + ")");
  }
  owner->assign(size_t(N), -1);
  for (int l = 0; l < L; ++l)
    for (int e = 0; e < N; ++e)
      if (glp_mip_col_val(lp.get(), 1 + l * N + e) > 0.5) (*owner)[size_t(e)] = l;
  *value = glp_mip_obj_val(lp.get());
  return true;
}

Partition from_owner(int L, int N, std::vector<int> owner) {
  Partition p;
  p.n_layers = L;
  p.n_experts = N;
  p.per_layer = N / L;
  p.owner = std::move(owner);
  p.owned.assign(size_t(L), {});
  for (int e = 0; e < N; ++e) p.owned[size_t(p.owner[size_t(e)])].push_back(e);
  return p;
}

void check_shape(const std::vector<double>& counts, int L, int N) {
  if (L < 1 || N < L || N % L != 0 || counts.size() != size_t(L) * size_t(N))
    throw std::invalid_argument("partition: counts must be (L, N) with N a multiple of L");
}

}  // namespace

std::vector<int> routing_ranks(const std::vector<double>& counts, int L, int N) {
  check_shape(counts, L, N);
  std::vector<int> rank(size_t(L) * size_t(N));
  std::vector<int> order(static_cast<size_t>(N));
  for (int l = 0; l < L; ++l) {
    std::iota(order.begin(), order.end(), 0);
    const double* row = counts.data() + size_t(l) * size_t(N);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
    for (int r = 0; r < N; ++r) rank[size_t(l * N + order[size_t(r)])] = r;
  }
  return rank;
}

void measure_coverage(Partition& p, const std::vector<double>& counts, double target) {
  const int L = p.n_layers, N = p.n_experts;
  p.coverage.assign(size_t(L), 1.0);
  p.deficit.assign(size_t(L), 0.0);
  for (int l = 0; l < L; ++l) {
    double total = 0, kept = 0;
    for (int e = 0; e < N; ++e) {
      total += counts[size_t(l * N + e)];
      if (p.owns(l, e)) kept += counts[size_t(l * N + e)];
    }
    p.coverage[size_t(l)] = total > 0 ? kept / total : 1.0;
    p.deficit[size_t(l)] = std::max(0.0, target - p.coverage[size_t(l)]);
  }
}

Partition solve_partition(const std::vector<double>& counts, int L, int N, double coverage) {
  check_shape(counts, L, N);
  for (double c : counts)
    if (!(c >= 0)) throw std::invalid_argument("partition: counts must be >= 0");
  const int K = N / L;
  const std::vector<int> rank = routing_ranks(counts, L, N);
  std::vector<double> objective(rank.begin(), rank.end());
  std::vector<int> owner;
  double value = 0;
  // A tiny slack on the coverage rows: "kept >= 0.95 total" must not fail on rounding.
  if (solve_assignment(L, N, K, objective, &counts, coverage * (1 - 1e-12), &owner, &value)) {
    Partition p = from_owner(L, N, owner);
    p.rank_sum = int64_t(value + 0.5);
    measure_coverage(p, counts, coverage);
    p.coverage_met = true;
    std::fill(p.deficit.begin(), p.deficit.end(), 0.0);
    return p;
  }
  // Transportation fallback: maximise sum_l kept_l / total_l (minimise its negative).
  for (int l = 0; l < L; ++l) {
    double total = 0;
    for (int e = 0; e < N; ++e) total += counts[size_t(l * N + e)];
    for (int e = 0; e < N; ++e)
      objective[size_t(l * N + e)] = total > 0 ? -counts[size_t(l * N + e)] / total : 0.0;
  }
  if (!solve_assignment(L, N, K, objective, nullptr, 0.0, &owner, &value))
    throw std::runtime_error("partition: the assignment program has no solution");
  Partition p = from_owner(L, N, owner);
  int64_t ranks = 0;
  for (int e = 0; e < N; ++e) ranks += rank[size_t(p.owner[size_t(e)] * N + e)];
  p.rank_sum = ranks;
  measure_coverage(p, counts, coverage);
  p.coverage_met = false;
  return p;
}

Partition random_partition(int L, int N, uint64_t seed) {
  if (L < 1 || N < L || N % L != 0)
    throw std::invalid_argument("partition: N must be a positive multiple of L");
  std::vector<int> experts(static_cast<size_t>(N));
  std::iota(experts.begin(), experts.end(), 0);
  Rng rng(seed);
  for (int i = N - 1; i > 0; --i)
    std::swap(experts[size_t(i)], experts[rng.below(uint64_t(i + 1))]);
  std::vector<int> owner(static_cast<size_t>(N));
  const int K = N / L;
  for (int i = 0; i < N; ++i) owner[size_t(experts[size_t(i)])] = i / K;
  return from_owner(L, N, owner);
}

}  // namespace unipool
