// Checkpoints (SPEC section 6): the model file and the training state beside it, written and
// read as a plain record. training/engine_checkpoint.cpp turns an engine's state into one and
// back (and adds UniPool-lock's part), so io/ never sees the engine. inspect_checkpoint and
// train_state_path are public (unipool/engine.h). Private to core/.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/parameters.h"
#include "unipool/config.h"
#include "unipool/corpus.h"
#include "unipool/engine.h"

namespace unipool {

struct CheckpointRecord {
  ModelConfig config;
  TrainOptions options;  // from the training state; defaults without one
  DataSpec data;         // idem
  int64_t step = 0;
  std::vector<bool> random_layers;  // (L)
  ParamStore params;
  // AdamW's moments by parameter name (the training state; every parameter on save).
  std::map<std::string, at::Tensor> exp_avg, exp_avg_sq;
  std::vector<double> recent_load;  // (L * Mg); the training state
  // The two files' metadata: on save, keys added to ours (UniPool-lock's "ownership" and
  // "lock_state"); on load, each file's whole metadata.
  std::map<std::string, std::string> model_meta, state_meta;
  bool has_train_state = false;  // loaded with `resume`
};

// Writes the pair atomically (io/checkpoint_pair.h). Refuses (throws CheckpointError) a model
// with a non-finite parameter; a write failure is a CheckpointError naming the file and cause.
void save_checkpoint(const CheckpointRecord& record, const std::string& path);

// Reads and checks a model file and, with `resume`, its training state. Throws
// CheckpointError naming the file and what is wrong.
CheckpointRecord load_checkpoint(const std::string& path, bool resume);

}  // namespace unipool
