// Everything an Engine holds: model, optimizer, data, settings and counters. Engine (engine.h)
// is the public face; the files of training/ and lock/ each work on this state:
//   train_step.cpp  one optimizer step            inference.cpp  evaluation, routes, generation
//   resize.cpp      pool grow/shrink               live_settings.cpp  settings between steps
//   engine_checkpoint.cpp  save and open (through io/checkpoint.h's plain record)
// Private to core/.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "model/backend.h"
#include "model/parameters.h"
#include "model/transformer.h"
#include "training/adamw.h"
#include "distributed/communicator.h"
#include "distributed/gradient_reducer.h"
#include "lock/lock_state.h"
#include "unipool/corpus.h"
#include "unipool/engine.h"

namespace unipool {

struct EngineState {
  ModelConfig config;
  TrainOptions options;
  DataSpec data;
  int64_t step = 0;
  ParamStore params;
  AdamW optimizer;
  LabelledText train, valid;
  std::vector<bool> random_layers;  // (L)
  bool collect_stats = true;
  // (L, Mg) exponentially decayed choice counts: which experts are busy, for resizing.
  std::vector<double> recent_load;
  LockState lock;  // UniPool-lock runs only (config.lock.enabled)
  // Where and with which operators the step runs (model/backend.h); fused CPU by default.
  ComputeOptions compute;
  std::shared_ptr<const StepBackend> backend;
  // Data parallelism (distributed/communicator.h); null for a single process.
  std::shared_ptr<Communicator> comm;
  // Its gradient average, hooked into backward (built at the first step; after comm and params
  // so that it goes first).
  std::unique_ptr<GradientReducer> reducer;

  // Reads or generates the training text and splits off validation.
  void load_data();
  // Route control for a forward pass; `salt` separates training steps from evaluation. It
  // carries the lock's partition and fade at the current step unless `unfaded` (the freeze's
  // counts, SPEC 8.2); `training` adds the lock's entropy-loss coefficient.
  RouteControl route_control(uint64_t salt, const std::optional<std::vector<bool>>& random,
                             bool with_entropy, bool training = false, bool unfaded = false) const;
  // A random-partition lock run's partition (fixed at step 0).
  void init_lock();
  // (B, S+1) int64 windows of the training text for `at_step`; their domains into `domains`.
  at::Tensor sample_batch(int64_t at_step, std::vector<uint8_t>* domains) const;
  void reset_recent_load();
};

// Salts of the counter-based RNG: hash(seed, salt, step) never repeats across uses.
constexpr uint64_t kSaltTrainRouting = 0x7261696E;
constexpr uint64_t kSaltEvalRouting = 0x6576616C;
constexpr uint64_t kSaltBatch = 0x62617463;
constexpr uint64_t kSaltResize = 0x72657369;
constexpr uint64_t kSaltPartition = 0x70617274;
constexpr uint64_t kSaltProbeDraw = 0x70726f62;

}  // namespace unipool
