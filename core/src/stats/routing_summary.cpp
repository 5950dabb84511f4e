#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "unipool/stats.h"

namespace unipool {

RoutingCounts::RoutingCounts(int layers, int per_group, int mg, int k, int domains)
    : n_layers(layers),
      layers_per_group(per_group),
      experts_per_group(mg),
      top_k(k),
      n_domains(domains),
      counts(size_t(layers) * size_t(mg), 0),
      gate_sum(size_t(layers) * size_t(mg), 0.0),
      entropy_sum(size_t(layers), 0.0),
      domain_counts(size_t(domains) * size_t(layers) * size_t(mg), 0),
      domain_tokens(size_t(domains), 0),
      zero_gate(size_t(layers), 0) {}

void RoutingCounts::add(const RoutingCounts& o) {
  if (o.empty()) return;
  if (empty() && counts.empty()) {
    *this = o;
    return;
  }
  if (o.n_layers != n_layers || o.experts_per_group != experts_per_group ||
      o.layers_per_group != layers_per_group || o.n_domains != n_domains || o.top_k != top_k) {
    throw std::invalid_argument("RoutingCounts::add: windows of different shapes");
  }
  tokens += o.tokens;
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
  for (size_t i = 0; i < gate_sum.size(); ++i) gate_sum[i] += o.gate_sum[i];
  for (size_t i = 0; i < entropy_sum.size(); ++i) entropy_sum[i] += o.entropy_sum[i];
  for (size_t i = 0; i < domain_counts.size(); ++i) domain_counts[i] += o.domain_counts[i];
  for (size_t i = 0; i < domain_tokens.size(); ++i) domain_tokens[i] += o.domain_tokens[i];
  // Counts made by hand (tests, old snapshots) may leave zero_gate empty.
  if (zero_gate.size() != size_t(n_layers)) zero_gate.assign(size_t(n_layers), 0);
  for (size_t i = 0; i < o.zero_gate.size() && i < zero_gate.size(); ++i)
    zero_gate[i] += o.zero_gate[i];
  reuse_sum += o.reuse_sum;
}

RoutingSummary summarize(const RoutingCounts& c) {
  RoutingSummary s;
  const int L = c.n_layers, Mg = c.experts_per_group, G = c.layers_per_group;
  s.n_layers = L;
  s.experts_per_group = Mg;
  s.n_experts = c.n_experts();
  const size_t cells = size_t(L) * size_t(Mg);
  s.load.assign(cells, 0.0);
  s.gate_mass.assign(cells, 0.0);
  s.pool_load.assign(size_t(s.n_experts), 0.0);
  s.layer_imbalance.assign(size_t(L), 0.0);
  if (c.tokens <= 0 || L <= 0 || Mg <= 0) return s;
  // A hand-made or deserialised window must be self-consistent before we index into it.
  if (G <= 0 || L % G != 0 || c.top_k <= 0 || c.counts.size() != cells ||
      c.gate_sum.size() != cells || c.entropy_sum.size() != size_t(L)) {
    throw std::invalid_argument("summarize: RoutingCounts sizes do not match its shape");
  }
  const double T = double(c.tokens), choices = T * c.top_k;

  std::vector<double> pool_counts(static_cast<size_t>(s.n_experts), 0.0);
  for (int l = 0; l < L; ++l) {
    double layer_max = 0.0;
    for (int i = 0; i < Mg; ++i) {
      const size_t cell = size_t(l) * size_t(Mg) + size_t(i);
      s.load[cell] = double(c.counts[cell]) / choices;
      s.gate_mass[cell] = c.gate_sum[cell] / T;
      layer_max = std::max(layer_max, s.load[cell]);
      const size_t global = size_t(l / G) * size_t(Mg) + size_t(i);
      s.pool_load[global] += s.load[cell];
      pool_counts[global] += double(c.counts[cell]);
    }
    s.layer_imbalance[size_t(l)] = layer_max * Mg;
    s.router_entropy += c.entropy_sum[size_t(l)] / T;
  }
  s.router_entropy /= L;
  s.reuse = c.reuse_sum / T;

  // Pool-level figures: each pool's share is its summed load over its G layers, / G.
  double mean = 0.0, var = 0.0;
  for (double v : pool_counts) mean += v;
  mean /= double(pool_counts.size());
  for (double v : pool_counts) var += (v - mean) * (v - mean);
  var /= double(pool_counts.size());
  s.cv = mean > 0.0 ? std::sqrt(var) / mean : 0.0;
  for (int g = 0; g < c.n_groups(); ++g) {
    double entropy = 0.0, worst = 0.0;
    for (int i = 0; i < Mg; ++i) {
      const double share = s.pool_load[size_t(g) * size_t(Mg) + size_t(i)] / G;
      worst = std::max(worst, share);
      if (share > 0.0) entropy -= share * std::log(share);
      if (pool_counts[size_t(g) * size_t(Mg) + size_t(i)] == 0.0) ++s.dead_experts;
    }
    s.imbalance = std::max(s.imbalance, worst * Mg);
    s.load_entropy += Mg > 1 ? entropy / std::log(double(Mg)) : 1.0;
  }
  s.load_entropy /= c.n_groups();
  return s;
}

std::string to_json(const RoutingSummary& s) {
  nlohmann::json j = {{"imbalance", s.imbalance},           {"cv", s.cv},
                      {"load_entropy", s.load_entropy},     {"dead_experts", s.dead_experts},
                      {"router_entropy", s.router_entropy}, {"reuse", s.reuse},
                      {"pool_load", s.pool_load},           {"layer_imbalance", s.layer_imbalance}};
  return j.dump();
}

RoutingCounts without_zero_gate(const RoutingCounts& counts,
                                const std::vector<std::vector<int>>* locked_owned) {
  RoutingCounts c = counts;
  if (c.zero_gate.size() != size_t(c.n_layers)) return c;
  const int Mg = c.experts_per_group;
  for (int l = 0; l < c.n_layers; ++l) {
    const int64_t zero = c.zero_gate[size_t(l)];
    if (zero == 0) continue;
    for (int j = 0; j < c.top_k; ++j) {
      const int local = locked_owned ? (*locked_owned)[size_t(l)][size_t(j)] % Mg : j;
      int64_t& cell = c.counts[size_t(l) * size_t(Mg) + size_t(local)];
      cell = std::max<int64_t>(cell - zero, 0);
    }
  }
  return c;
}

}  // namespace unipool
