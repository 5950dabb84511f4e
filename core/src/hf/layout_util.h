// Helpers the layout readers share: config.json lookups, FP8 scale tensors, parameter counts.
// Private to core/hf.
#pragma once

#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hf/layout_reader.h"

namespace unipool::hf {

std::string shape_text(const std::vector<int64_t>& shape);          // "(4, 8)"
std::string json_string(const nlohmann::json& j, const char* key);  // "" when absent
// The first of `keys` that holds a whole number (also under text_config); 0 when none does.
int64_t json_int(const nlohmann::json& j, std::initializer_list<const char*> keys);
// "Mixtral", "DeepSeek-V3", ... from config.json's model_type; otherwise the layout's name.
std::string family_name(const std::string& model_type, const std::string& layout);

// An FP8 weight's scale: "<name>_scale_inv" (one per block, DeepSeek and Qwen FP8 releases)
// or "<name>_scale" (one per tensor or per row). The block is config.json's
// quantization_config.weight_block_size when given, else what the scale's shape implies.
void attach_fp8_scale(MatrixRef& m, const StoredTensor& weight, const std::string& name,
                      const std::map<std::string, StoredTensor>& tensors,
                      const nlohmann::json& config);

// total, routed, shared (already summed), active and per-dtype parameter counts.
void count_parameters(MoeArchitecture& a, const std::map<std::string, StoredTensor>& tensors);

// Our own checkpoints (metadata format "unipool"): banks are the pool's groups.
MoeArchitecture read_own_layout(const std::map<std::string, StoredTensor>& tensors,
                                const std::map<std::string, std::string>& metadata);

}  // namespace unipool::hf
