// What a path a user opens is: one decision, from config.json and the safetensors header only
// (never the weights), shared by the studio's File > Open and the CLI.
#pragma once

#include <string>

namespace unipool {

enum class ModelFileKind {
  UniPool,        // one of our checkpoints (metadata format "unipool"): opens as a run
  Downloaded,     // a model of a family HfModel runs (a folder or one of its files)
  MoeCheckpoint,  // another safetensors checkpoint or model folder: its experts, not a run
  NotAModel,      // missing, unreadable, or not safetensors: `why` says which
};

struct ModelFileCheck {
  ModelFileKind kind = ModelFileKind::NotAModel;
  std::string why;  // for NotAModel
};

ModelFileCheck classify_model_file(const std::string& path);

}  // namespace unipool
