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
  // (L): tokens whose gates are all 0 (NormRouter with every logit <= 0): top-k still names
  // an expert (ties to the lower id) but the MoE output is 0 (SPEC section 9).
  std::vector<int64_t> zero_gate;

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

// The window without its zero-gate tokens (SPEC section 9): top-k names the first k experts a
// layer may choose for them (its own experts once locked: `locked_owned`, global ids), but they
// reach no expert. Loads drawn or measured per expert leave them out; `zero_gate` stays.
RoutingCounts without_zero_gate(const RoutingCounts& counts,
                                const std::vector<std::vector<int>>* locked_owned = nullptr);

// SPEC section 9's routing diagnostics on a window's counts C[l][e] (global experts).
struct RoutingDiagnostics {
  std::vector<double> top16_coverage;  // (L): the 16 largest counts / the layer's routes
  std::vector<double> entropy_bits;    // (L): entropy of the layer's counts, in bits
  double top16_coverage_mean = 0, entropy_bits_mean = 0;
  double jaccard_top16 = 0;  // mean over layer pairs of the Jaccard index of their top-16 sets
  int dead_experts = 0;      // experts with zero count summed over layers
  struct Union {
    int k = 0;
    int size = 0;              // |union over layers of their top-k sets|
    double pool_coverage = 0;  // size / N
    double saturation = 0;     // size / min(k L, N)
  };
  std::vector<Union> unions;       // k = 1, 2, 4, ... <= N
  std::vector<int64_t> zero_gate;  // (L)
  double effective_k = 0;          // mean over layers of exp(entropy in nats)
  // With a partition (UniPool-lock): routes to experts a layer does not own, in all and per
  // layer, and the share of each layer's routes its own experts received.
  bool has_partition = false;
  int64_t routes_outside = 0;
  std::vector<int64_t> routes_outside_by_layer;  // (L)
  std::vector<double> partition_coverage;        // (L)
};
// `owned`: each layer's experts (global ids) when the run has a partition.
RoutingDiagnostics diagnose(const RoutingCounts& counts,
                            const std::vector<std::vector<int>>* owned = nullptr);
// The diagnostics as one JSON object, for logs and `eval --json`.
std::string to_json(const RoutingDiagnostics& diagnostics);

// One line of JSON with the summary figures and the (L, Mg) counts, for logs and the CLI.
std::string to_json(const RoutingSummary& summary);

}  // namespace unipool
