// Cross-layer expert redundancy from the weights alone (no forward pass): the question UniPool
// asks of every MoE, whether experts in different layers are alike enough to share one pool.
//
// Each expert is the flattened concatenation of its matrices. Their cosine similarity is
// estimated from the same fixed random subset of rows of every matrix (so the cost is bounded
// whatever the checkpoint's size), and the estimate's error is measured: the sampled rows are
// split into two random halves, and half the difference of the two halves' cosines estimates
// the standard error of the whole sample's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unipool/moe_checkpoint.h"

namespace unipool {

struct RedundancyOptions {
  int rows = 32;              // rows sampled from each matrix; 0 = every row (exact)
  uint64_t seed = 2605;       // which rows
  int max_experts = 4096;     // above, banks are thinned to every k-th (the matrix is n x n)
  double max_flops = 2e12;    // the sample shrinks so the similarity products stay below this
  int router_columns = 1024;  // router rows compared on at most this many hidden dims
};

struct ExpertPair {
  int bank_a = 0, expert_a = 0, bank_b = 0, expert_b = 0;  // banks as in the report's list
  double cosine = 0;
};

struct BankNearest {
  double mean_best = 0;  // mean over the bank's experts of the best cosine in another bank
  ExpertPair best;       // the bank's closest cross-bank pair
};

struct RedundancyReport {
  std::vector<int> banks;           // the architecture's banks analysed (all, or every k-th)
  std::vector<std::string> labels;  // their labels
  int experts = 0;                  // per bank
  std::vector<float> similarity;    // (n, n), n = banks x experts, bank-major, cosine
  bool exact = false;               // every row read: no sampling error
  std::vector<int64_t> rows_sampled, rows_total;  // per matrix of an expert
  int64_t values_sampled = 0, values_total = 0;   // per expert
  double standard_error = 0;               // rms over expert pairs of the estimated standard error
  std::vector<ExpertPair> top_pairs;       // most similar cross-bank pairs (within, with one bank)
  std::vector<BankNearest> nearest;        // per bank
  std::vector<double> histogram_edges;     // bins of cosine
  std::vector<int64_t> within, cross;      // pairs per bin: same bank, different banks
  double mean_within = 0, mean_cross = 0;  // the mean cosine of those pairs (0 when none)
  std::vector<double> norms;               // (banks, experts) Frobenius norm (sample-estimated)
  std::vector<int> router_layers;          // the routers compared
  std::vector<float> router_similarity;    // (R, R): mean over l's rows of the best |cos| in l'
  int router_columns_used = 0;
  std::vector<std::string> notes;  // thinning, a sample shrunk to the budget, ...
  uint64_t bytes_read = 0;
  double seconds = 0;
};

// Throws Cancelled when `progress` returns false, FormatError when a file cannot be read.
RedundancyReport analyse_redundancy(const MoeCheckpoint& checkpoint,
                                    const RedundancyOptions& options = {},
                                    const ProgressFn& progress = {});

// The architecture, its pool view and the report's summary figures as JSON text (what
// `unipool inspect --json` prints for these files).
std::string redundancy_json(const MoeCheckpoint& checkpoint, const RedundancyReport* report);

}  // namespace unipool
