// model.safetensors.index.json: a weight map whose every shard is a plain file name in the
// checkpoint's folder, or FormatError.
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "fuzz_input.h"
#include "hf/checkpoint_json.h"
#include "unipool/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    const unipool::hf::CheckpointIndex index = unipool::hf::parse_checkpoint_index(j, "fuzz");
    for (const auto& [tensor, shard] : index.weight_map)
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "..") std::abort();
    if (index.shards.empty()) std::abort();
  } catch (const unipool::FormatError&) {
  }
  return 0;
}
