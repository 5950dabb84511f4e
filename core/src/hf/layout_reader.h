// Recognises a MoE layout from a checkpoint's tensor names, shapes and config.json. Private
// to core/hf.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "unipool/moe_checkpoint.h"

namespace unipool::hf {

struct StoredTensor {
  int file = -1;
  const TensorEntry* info = nullptr;
};

// A downloaded (Hugging Face) checkpoint's layout. `tensors`: every tensor of every file by
// name; `config`: config.json (null when absent). Our own files go to read_own_layout
// (layout_util.h). Throws MoeLayoutError naming what it found when the layout is unknown or
// inconsistent.
MoeArchitecture read_layout(const std::map<std::string, StoredTensor>& tensors,
                            const nlohmann::json& config);

}  // namespace unipool::hf
