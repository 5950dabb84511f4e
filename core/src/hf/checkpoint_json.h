// The JSON files of a downloaded checkpoint folder: config.json and the shard index
// (model.safetensors.index.json). Private to core/hf. Both come from the internet: read whole
// only below a size cap, and the index may name only plain files inside its folder.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace unipool::hf {

// Real config.json and index files are a few KB to a few MB (an index lists every tensor).
inline constexpr uint64_t kMaxCheckpointJsonBytes = uint64_t{64} << 20;

// A JSON object read from `path`. FormatError naming the path when it cannot be read, is
// larger than kMaxCheckpointJsonBytes or is not a JSON object.
nlohmann::json read_json_object(const std::string& path);

struct CheckpointIndex {
  std::vector<std::string> shards;                // file names, in order of first appearance
  std::map<std::string, std::string> weight_map;  // tensor name -> its shard's file name
};

// The index's "weight_map": every value a plain file name in the folder (no '/', '\', "." or
// ".."). FormatError starting with `what` otherwise.
CheckpointIndex parse_checkpoint_index(const nlohmann::json& index, const std::string& what);

}  // namespace unipool::hf
