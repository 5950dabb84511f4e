// SPEC section 9's diagnostics: how concentrated each layer's routing is (top-16 coverage,
// entropy), how much the layers' favourite experts overlap (Jaccard, unions of top-k sets),
// zero-gate tokens, and for UniPool-lock runs the routes outside the partition.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "unipool/stats.h"

namespace unipool {

namespace {

// The layer's k most-routed global experts (ties to the lower id). row: (N).
std::vector<int> top_set(const std::vector<int64_t>& row, int k) {
  std::vector<int> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return row[size_t(a)] > row[size_t(b)]; });
  order.resize(std::min(order.size(), size_t(std::max(k, 0))));
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

RoutingDiagnostics diagnose(const RoutingCounts& c, const std::vector<std::vector<int>>* owned) {
  RoutingDiagnostics d;
  const int L = c.n_layers, Mg = c.experts_per_group, N = c.n_experts();
  if (L == 0 || N == 0) return d;
  // C[l][e] over global experts: layer l reaches experts group(l) * Mg + i.
  std::vector<std::vector<int64_t>> C(size_t(L), std::vector<int64_t>(size_t(N), 0));
  for (int l = 0; l < L; ++l)
    for (int i = 0; i < Mg; ++i)
      C[size_t(l)][size_t((l / c.layers_per_group) * Mg + i)] = c.count(l, i);
  std::vector<std::vector<int>> top16{size_t(L)};
  for (int l = 0; l < L; ++l) {
    const auto& row = C[size_t(l)];
    const double n =
        double(std::max<int64_t>(std::accumulate(row.begin(), row.end(), int64_t(0)), 1));
    top16[size_t(l)] = top_set(row, 16);
    double kept = 0, bits = 0;
    for (int e : top16[size_t(l)]) kept += double(row[size_t(e)]);
    for (int64_t v : row)
      if (v > 0) bits -= (double(v) / n) * std::log2(double(v) / n);
    d.top16_coverage.push_back(kept / n);
    d.entropy_bits.push_back(bits);
    d.effective_k += std::exp(bits * std::log(2.0)) / L;
  }
  d.top16_coverage_mean =
      std::accumulate(d.top16_coverage.begin(), d.top16_coverage.end(), 0.0) / L;
  d.entropy_bits_mean = std::accumulate(d.entropy_bits.begin(), d.entropy_bits.end(), 0.0) / L;
  int pairs = 0;
  for (int a = 0; a < L; ++a)
    for (int b = a + 1; b < L; ++b) {
      std::vector<int> both, either;
      std::set_intersection(top16[size_t(a)].begin(), top16[size_t(a)].end(),
                            top16[size_t(b)].begin(), top16[size_t(b)].end(),
                            std::back_inserter(both));
      std::set_union(top16[size_t(a)].begin(), top16[size_t(a)].end(), top16[size_t(b)].begin(),
                     top16[size_t(b)].end(), std::back_inserter(either));
      d.jaccard_top16 += either.empty() ? 0.0 : double(both.size()) / double(either.size());
      ++pairs;
    }
  if (pairs > 0) d.jaccard_top16 /= pairs;
  for (int e = 0; e < N; ++e) {
    int64_t total = 0;
    for (int l = 0; l < L; ++l) total += C[size_t(l)][size_t(e)];
    if (total == 0) ++d.dead_experts;
  }
  for (int k = 1; k <= N; k *= 2) {
    std::set<int> all;
    for (int l = 0; l < L; ++l)
      for (int e : top_set(C[size_t(l)], k)) all.insert(e);
    RoutingDiagnostics::Union u;
    u.k = k;
    u.size = int(all.size());
    u.pool_coverage = double(u.size) / N;
    u.saturation = double(u.size) / std::min(k * L, N);
    d.unions.push_back(u);
  }
  d.zero_gate = c.zero_gate;
  if (owned && int(owned->size()) == L) {
    d.has_partition = true;
    for (int l = 0; l < L; ++l) {
      const std::set<int> mine((*owned)[size_t(l)].begin(), (*owned)[size_t(l)].end());
      int64_t inside = 0, total = 0;
      for (int e = 0; e < N; ++e) {
        total += C[size_t(l)][size_t(e)];
        if (mine.count(e)) inside += C[size_t(l)][size_t(e)];
      }
      d.routes_outside_by_layer.push_back(total - inside);
      d.routes_outside += total - inside;
      d.partition_coverage.push_back(total > 0 ? double(inside) / double(total) : 1.0);
    }
  }
  return d;
}

std::string to_json(const RoutingDiagnostics& d) {
  nlohmann::json unions = nlohmann::json::array();
  for (const auto& u : d.unions)
    unions.push_back({{"k", u.k},
                      {"union", u.size},
                      {"pool_coverage", u.pool_coverage},
                      {"saturation", u.saturation}});
  nlohmann::json j = {{"top16_coverage", d.top16_coverage},
                      {"top16_coverage_mean", d.top16_coverage_mean},
                      {"entropy_bits", d.entropy_bits},
                      {"entropy_bits_mean", d.entropy_bits_mean},
                      {"jaccard_top16", d.jaccard_top16},
                      {"dead_experts", d.dead_experts},
                      {"unions", unions},
                      {"zero_gate", d.zero_gate},
                      {"effective_k", d.effective_k}};
  if (d.has_partition) {
    j["routes_outside"] = d.routes_outside;
    j["routes_outside_by_layer"] = d.routes_outside_by_layer;
    j["partition_coverage"] = d.partition_coverage;
  }
  return j.dump();
}

}  // namespace unipool
