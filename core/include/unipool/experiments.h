// The paper's two questions as experiments, shared by the CLI and the studio: does routing in
// deep layers matter (the random-routing probe, paper section 3), and how small can the shared
// pool be (the pool-size sweep). Long work reports progress through a callback and stops when
// the callback returns false (Cancelled is thrown); nothing finished is lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "unipool/cancelled.h"
#include "unipool/engine.h"

namespace unipool {

// done of total units; return false to cancel.
using Progress = std::function<bool(int64_t done, int64_t total)>;

// Mean and sample spread (standard deviation, n - 1) of `values`; the spread is 0 for one value.
void mean_and_spread(const std::vector<double>& values, double* mean, double* spread);

// ---- the random-routing probe --------------------------------------------------------------

struct ProbeRow {
  std::string name;                        // "none", "layer 3", "from 2"
  std::string kind;                        // "none", "layer", "from"
  int layer = -1;                          // the layer, or the first random layer of "from k"
  std::vector<double> loss, accuracy;      // (seeds)
  double d_loss_mean = 0, d_loss_std = 0;  // loss change against "none"
  double d_accuracy_mean = 0, d_accuracy_std = 0;  // next-byte accuracy change
};

struct ProbeResult {
  std::string model;  // label (checkpoint path or run name)
  int n_layers = 0, seeds = 0, seq = 0;
  int64_t n_targets = 0;
  std::vector<ProbeRow> rows;  // none, layer 0..L-1, from 0..L-1
};

// Evaluates `text` with random routing in each single layer, in every layer from k down (each
// k), and in none, with draws 0..seeds-1 (draw 0 is what `eval --random-layers` uses).
ProbeResult run_probe(const Engine& engine, const std::string& label, const std::string& text,
                      int seq, int seeds, int64_t max_windows = -1, const Progress& progress = {});
// The same over any model: `evaluate(random, draw)` evaluates with random routing in the
// layers switched on (indexed like `layers`, which holds the model's own numbers of the
// layers that route: a downloaded model's MoE layers).
using ProbeEvaluate = std::function<EvalResult(const std::vector<bool>& random, uint64_t draw)>;
ProbeResult run_probe(const ProbeEvaluate& evaluate, const std::vector<int>& layers,
                      const std::string& label, int seq, int seeds, const Progress& progress = {});
std::string to_json(const ProbeResult& result);
std::string probe_csv(const ProbeResult& result);
ProbeResult probe_from_json(const std::string& json);

// ---- the pool-size sweep -------------------------------------------------------------------

struct SweepSpec {
  std::string preset = "default";  // the UniPool run whose pool size varies
  std::vector<int> pool_sizes;     // Mg values; empty: 25, 41.7, 50, 66.7, 100% of vanilla
  // A grid with pool_sizes: each UniPool run at each of these aux coefficients (empty: the
  // preset's). The zero-gate regime of SPEC section 9 depends on it.
  std::vector<double> aux_coefs;
  bool vanilla = true;             // the layer-wise baseline
  bool lock = false;               // a UniPool-lock run too
  bool lock_random = false;        // and its control, the random locked partition
  // Every run's router details (TrainOptions; issue 21 item 5): 0 / < 0 = the defaults.
  double router_init_std = 0.0;
  double router_weight_decay = -1.0;
  std::vector<uint64_t> seeds = {1};
  int steps = 1000;
  int batch = 16, seq = 128;
  DataSpec data;
  int curve_every = 10;  // steps between the saved loss-curve points
};

struct SweepRun {
  // Folder name: "mg12-s1", "vanilla-s1", "lock-s1", "lock-random-s1"; in a grid
  // "mg12-a0.001-s1", "lock-a0.001-s1".
  std::string name;
  std::string kind;  // "unipool", "vanilla", "lock", "lock-random"
  int experts_per_group = 0;
  uint64_t seed = 0;
  double budget = 0;  // expert parameters / the vanilla budget
  double aux_coef = -1;  // the run's aux coefficient (UniPool and lock runs); -1: the preset's
  // Filled when the run is done (its metrics.json exists):
  bool done = false;
  double valid_loss = 0, valid_accuracy = 0, tokens_per_s = 0, seconds = 0;
  // On the validation text at the end (SPEC section 9): per layer, the share of tokens whose
  // gates are all 0 ("no expert"), and over all layers.
  std::vector<double> zero_gate;
  double zero_gate_all = 0;
  std::vector<std::pair<int64_t, double>> curve;  // (step, training CE)
};

struct SweepState {
  SweepSpec spec;
  std::string dir;
  std::vector<SweepRun> runs;
};

std::string to_json(const SweepSpec& spec);
SweepSpec sweep_spec_from_json(const std::string& json);
std::vector<SweepRun> plan_sweep(const SweepSpec& spec);
// Creates or reopens `dir`: writes sweep.json for a new folder, or checks that an existing one
// was made with the same spec; runs with a metrics.json are done, folders without one are
// half-written and will be redone.
SweepState open_sweep(const std::string& dir, const SweepSpec& spec);
// Reads a finished or partial sweep folder (for the studio), spec from its sweep.json.
SweepState load_sweep(const std::string& dir);

// A pool-size x aux-coefficient grid (--aux-coefs) as tables: the UniPool runs' validation
// CE and zero-gate share (all layers), mean over the finished seeds; NaN where no run of the
// cell has finished (or, for zero-gate, none recorded it).
struct SweepGrid {
  std::vector<int> pool_sizes;     // columns, ascending
  std::vector<double> aux_coefs;   // rows, ascending
  std::vector<double> valid_loss;  // (rows, columns)
  std::vector<double> zero_gate;   // (rows, columns)
  std::vector<int> seeds_done;     // (rows, columns)
};
SweepGrid sweep_grid(const SweepState& state);
// One line per UniPool run: pool, aux, seed, done, valid_loss, zero_gate_all, then each
// layer's zero-gate share.
std::string sweep_grid_csv(const SweepState& state);

struct SweepEvent {
  int run = 0;  // index into runs
  int64_t step = 0, steps = 0;
  double ce = 0;
  bool finished = false;  // the run has just been saved
};
// Trains every run that is not done, `parallel` at a time (each on its own thread; set
// OpenBLAS to one thread for that). `on_event` is called from the worker threads (serialise
// in it); returning false cancels: runs in progress are abandoned (their folder is redone next
// time) and Cancelled is thrown once every worker has stopped.
void run_sweep(SweepState& state, int parallel,
               const std::function<bool(const SweepEvent&)>& on_event = {});

}  // namespace unipool
