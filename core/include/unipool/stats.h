// Routing statistics of SPEC section 5 as plain value types: cheap to copy across threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace unipool {

// Raw sums over a window of routed tokens; windows add up with `add`.
struct RoutingCounts {
  int n_layers = 0;
  int layers_per_group = 1;
  int experts_per_group = 0;  // Mg
  int top_k = 1;
  int n_domains = 0;                   // domains of the labelled corpus, 0 when unknown
  int64_t tokens = 0;                  // T: tokens routed by every layer
  std::vector<int64_t> counts;         // (L, Mg): choices of local expert i by layer l
  std::vector<double> gate_sum;        // (L, Mg): sum of gates given to local expert i
  std::vector<double> entropy_sum;     // (L): sum over tokens of normalised router entropy
  double reuse_sum = 0.0;              // sum over tokens of distinct experts / (L * top_k)
  std::vector<int64_t> domain_counts;  // (D, L, Mg): choices by tokens of each domain
  std::vector<int64_t> domain_tokens;  // (D): tokens of each domain

  RoutingCounts() = default;
  RoutingCounts(int layers, int layers_per_group, int experts_per_group, int top_k,
                int domains = 0);
  int n_groups() const { return layers_per_group > 0 ? n_layers / layers_per_group : 0; }
  int n_experts() const { return n_groups() * experts_per_group; }
  int64_t count(int layer, int expert) const {
    return counts[size_t(layer) * size_t(experts_per_group) + size_t(expert)];
  }
  // Adds another window of the same shape (throws std::invalid_argument otherwise).
  void add(const RoutingCounts& other);
  bool empty() const { return tokens == 0; }
};

// The derived figures of SPEC section 5.
struct RoutingSummary {
  int n_layers = 0, experts_per_group = 0, n_experts = 0;
  std::vector<double> load;       // (L, Mg): count / (T * top_k)
  std::vector<double> gate_mass;  // (L, Mg): sum of gates / T
  std::vector<double> pool_load;  // (N): per global expert, summed over the layers reaching it
  std::vector<double> layer_imbalance;  // (L): max_i load / (1/Mg); 1 is perfect
  double imbalance = 0.0;               // of the pool load, per pool, worst pool
  double cv = 0.0;                      // coefficient of variation of the pool counts
  double load_entropy = 0.0;            // H(pool load) / log(Mg), averaged over pools
  int dead_experts = 0;                 // global experts no token reached in the window
  double router_entropy = 0.0;          // mean normalised router entropy over layers and tokens
  double reuse = 0.0;                   // mean over tokens of distinct experts / (L * top_k)
};

RoutingSummary summarize(const RoutingCounts& counts);

// One line of JSON with the summary figures and the (L, Mg) counts, for logs and the CLI.
std::string to_json(const RoutingSummary& summary);

}  // namespace unipool
