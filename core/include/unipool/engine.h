// The UniPool engine: a model, its optimizer state and its data, trained one step at a time.
//
// Threading contract: an Engine is used from one thread at a time (the CLI's main thread, or
// the studio's worker thread). Settings are changed between steps by the same thread; every
// result it returns is a plain value that may be handed to another thread.
// Nothing here exposes LibTorch: the tensors live behind the pimpl.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "unipool/config.h"
#include "unipool/distributed.h"
#include "unipool/live_settings.h"
#include "unipool/lock.h"
#include "unipool/stats.h"

namespace unipool {

// A checkpoint that cannot be read or does not match its config.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A readable safetensors file whose metadata names another format: not one of our models (a
// downloaded MoE checkpoint, say), which the studio opens for its experts instead.
class NotUniPoolFile : public CheckpointError {
 public:
  using CheckpointError::CheckpointError;
};

// Where training text comes from: a file or folder, or the built-in multi-domain corpus.
struct DataSpec {
  std::string path;                 // empty: the built-in corpus
  int64_t builtin_bytes = 4000000;  // size of the generated corpus
  uint64_t builtin_seed = 7;
};

struct StepMetrics {
  int64_t step = 0;  // steps completed (this one included when applied)
  double loss = 0, ce = 0, aux = 0, z_loss = 0;
  double lr = 0, grad_norm = 0;
  bool applied = true;  // false: loss or gradient not finite, the update was skipped
  double seconds = 0, tokens_per_s = 0;
  double stats_seconds = 0;  // part of `seconds` spent collecting the routing statistics
  RoutingCounts routing;     // this step's routing; empty when statistics are off
  // UniPool-lock runs (SPEC section 8): the entropy term, the phase this step trained in, and
  // the engine's own validation when it ran one (every kValidationInterval steps).
  double entropy_loss = 0;
  LockPhase phase = LockPhase::None;
  bool validated = false;
  double valid_loss = 0;
  RoutingCounts valid_routing;
  std::string event;    // "freeze", "lock", "fail-stop" or empty
  std::string message;  // what the event means, for a log line or a dialog
};

// Training stopped by UniPool-lock's fail-stop; the model is kept as it is.
class LockStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EvalResult {
  double loss = 0;  // mean CE over all targets (SPEC section 7)
  int64_t n_targets = 0;
  double accuracy = 0;  // share of targets that are the model's most likely next byte
  RoutingCounts routing;
};

// Per-token routes for a text: each layer's chosen experts and gates, and the next-byte guess.
struct TokenRoutes {
  int n_layers = 0, top_k = 0, experts_per_group = 0;
  int64_t n_tokens = 0;
  std::string text;
  std::vector<int32_t> experts;  // (n_tokens, L, k) global expert ids
  std::vector<float> gates;      // (n_tokens, L, k)
  std::vector<float> next_byte;  // (n_tokens, 256) predicted distribution of the next byte
};

struct ResizeReport {
  int old_experts_per_group = 0, new_experts_per_group = 0;
  std::vector<int> removed;                // global ids (old numbering) that were dropped
  std::vector<std::pair<int, int>> split;  // (new global id, global id it was copied from)
};

struct GenerateOptions {
  int tokens = 200;
  double temperature = 0.8;  // 0: greedy
  int top_k = 40;            // 0: the whole vocabulary
  uint64_t seed = 1;
};

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

// What a checkpoint holds, read without building a model.
struct CheckpointInfo {
  ModelConfig config;
  int64_t step = 0;
  std::vector<TensorInfo> tensors;
  bool has_train_state = false;
};
CheckpointInfo inspect_checkpoint(const std::string& path);  // throws CheckpointError
// `<dir>/<stem>.train.safetensors` for `<dir>/<stem>.safetensors`.
std::string train_state_path(const std::string& model_path);

// Where and how the engine computes. Checkpoints never record it: a run saved on one device
// opens on any other.
struct ComputeOptions {
  std::string device = "cpu";    // "cpu" or "cuda"
  std::string backend = "auto";  // auto (fused on the CPU, generic on CUDA), fused, generic
  bool bf16 = false;             // bf16 matrix products, fp32 weights and optimizer (CUDA only)
};
// Whether this build and machine can compute on CUDA; if not, why (for messages and greyed
// choices).
bool cuda_available(std::string* why = nullptr);

struct EngineState;  // everything an Engine holds (core/src/training/engine_state.h)

class Engine {
 public:
  // A new model with fresh weights. Throws ConfigError or DataError on bad input.
  // threads > 0 calls set_compute_threads(threads), which is process-wide: an engine opened
  // on another thread (say, to inspect a file) should pass 0 to leave the setting alone.
  Engine(const ModelConfig& config, const TrainOptions& options, const DataSpec& data,
         int threads = 0);
  // A saved model. With `resume`, the training state beside it is loaded too (optimizer,
  // step, options, data source); `data` overrides the data source when set. Without `resume`
  // the engine keeps the file's step but starts with default TrainOptions, fresh optimizer
  // moments and no training text unless `data` is given (train_step() then throws DataError).
  static std::unique_ptr<Engine> open(const std::string& path, bool resume,
                                      const std::optional<DataSpec>& data = std::nullopt,
                                      int threads = 0);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The references below stay valid but change with the setters: read them on the engine's
  // thread, or copy them there before handing them to another thread.
  const ModelConfig& config() const;
  const TrainOptions& options() const;
  const DataSpec& data() const;
  int64_t step() const;
  const std::vector<std::string>& domain_names() const;  // of the training text

  // One optimizer step on a batch drawn from the training text.
  StepMetrics train_step();

  // ---- settings that take effect at the next step ----
  // A live setting (unipool/live_settings.h): validated, then applied; throws ConfigError or
  // invalid_argument and changes nothing for a value the model cannot take.
  AppliedSetting apply(const LiveSetting& setting);
  // Shorthands for apply() with one setting.
  void set_learning_rate(double peak_lr);  // the schedule's peak; warm-up and cosine keep going
  void set_total_steps(int total_steps);   // the schedule's length
  void set_aux_coef(double aux_coef);
  void set_top_k(int top_k);                                // recomputes the NormRouter constant
  void set_random_layers(const std::vector<bool>& random);  // (L), training and evaluation
  const std::vector<bool>& random_layers() const;
  void set_collect_stats(bool on);  // per-step RoutingCounts in StepMetrics
  // UniPool-lock's phase, partition, reference loss and fail-stop (enabled = false otherwise).
  LockStatus lock_status() const;
  // Grow or shrink every pool (UniPool and grouped modes). When shrinking, `drop` names the
  // global experts to remove (the same number from each pool); empty = the least loaded.
  ResizeReport resize_pool(int new_experts_per_group, const std::vector<int>& drop = {});

  // ---- evaluation and inspection (no gradients, no change to training state) ----
  // SPEC section 7 on `text`; `random_layers` overrides the engine's setting when given;
  // max_windows < 0 evaluates every window.
  // `draw` picks another stream of random-routing draws (0: the default one, as `eval`).
  EvalResult evaluate(const std::string& text, int seq,
                      const std::optional<std::vector<bool>>& random_layers = std::nullopt,
                      int64_t max_windows = -1, uint64_t draw = 0) const;
  // The held-out part of the training text (what evaluate_validation evaluates).
  const std::string& validation_text() const;
  // In a data-parallel run, a collective: every rank calls it and gets the same result.
  EvalResult evaluate_validation(int64_t max_windows = 64) const;
  TokenRoutes routes(const std::string& text) const;
  std::string generate(const std::string& prompt, const GenerateOptions& options) const;
  std::vector<TensorInfo> tensors() const;
  // Per global expert: Frobenius norm of its concatenated (w_gate, w_up, w_down). (N)
  std::vector<double> expert_norms() const;
  // Cosine similarity of flattened expert weights. (N, N) row-major.
  std::vector<double> expert_similarity() const;

  // Moves the model, its optimizer moments and the step to another device or backend (throws
  // std::invalid_argument, changing nothing, for one this build or machine cannot run).
  void set_compute(const ComputeOptions& options);
  const ComputeOptions& compute() const;
  std::string compute_description() const;  // "CPU, fused operators", "CUDA (H100), bf16"

  // Data parallelism (unipool/distributed.h): joins the process group; from the next step on
  // this engine trains on its rank's shard of every global batch (options().batch, which
  // must divide by the world size) and all-reduces gradients, losses and routing counts.
  // Throws DistributedSetupError. A world of 1 changes nothing.
  void set_distributed(const DistributedConfig& config);
  int rank() const;                      // 0 without data parallelism
  int world_size() const;                // 1 without
  double communication_seconds() const;  // spent in collectives so far

  // Writes the model file and `<stem>.train.safetensors` beside it, each atomically.
  void save(const std::string& path) const;

 private:
  explicit Engine(std::unique_ptr<EngineState> state);
  std::unique_ptr<EngineState> state_;
};

// Sets the process's compute threads for training and evaluation: the engine splits its work
// (GEMMs, experts, attention batches, norms) over `threads` of LibTorch's pool and OpenBLAS
// runs each piece on one thread (two pools fight otherwise). Process-wide; the same count
// gives the same bytes every time (docs/performance.md: what also matches across counts).
void set_compute_threads(int threads);

}  // namespace unipool
