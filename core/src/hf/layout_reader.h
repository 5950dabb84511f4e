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

// `tensors`: every tensor of every file by name; `config`: config.json (null when absent);
// `metadata`: the first file's __metadata__ (our own files say format "unipool" there).
// Throws MoeLayoutError naming what it found when the layout is unknown or inconsistent.
MoeArchitecture read_layout(const std::map<std::string, StoredTensor>& tensors,
                            const nlohmann::json& config,
                            const std::map<std::string, std::string>& metadata);

}  // namespace unipool::hf
