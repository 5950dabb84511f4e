#include "hf/checkpoint_json.h"

#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "unipool/safetensors.h"  // FormatError

namespace unipool::hf {

nlohmann::json read_json_object(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw FormatError(path + ": cannot open file");
  const std::streamoff size = in.tellg();
  if (size < 0) throw FormatError(path + ": cannot read file");
  if (uint64_t(size) > kMaxCheckpointJsonBytes)
    throw FormatError(path + ": " + std::to_string(uint64_t(size) >> 20) +
                      " MiB is too large for a checkpoint's JSON file (the limit is " +
                      std::to_string(kMaxCheckpointJsonBytes >> 20) + " MiB)");
  in.seekg(0);
  std::string text(size_t(size), '\0');
  if (!in.read(text.data(), size)) throw FormatError(path + ": cannot read file");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(path + ": not a JSON object");
  return j;
}

CheckpointIndex parse_checkpoint_index(const nlohmann::json& j, const std::string& what) {
  const auto map = j.is_object() ? j.find("weight_map") : j.end();
  if (map == j.end() || !map->is_object() || map->empty())
    throw FormatError(what + ": no \"weight_map\" object naming each tensor's file");
  CheckpointIndex index;
  std::set<std::string> seen;
  for (const auto& [tensor, file] : map->items()) {
    if (!file.is_string())
      throw FormatError(what + ": the file of " + tensor + " is not a string");
    const std::string f = file.get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos ||
        f.find('\0') != std::string::npos || f == "." || f == "..")
      throw FormatError(what + ": shard name '" + f + "' of " + tensor +
                        " is not a file name in the folder");
    index.weight_map[tensor] = f;
    if (seen.insert(f).second) index.shards.push_back(f);
  }
  return index;
}

}  // namespace unipool::hf
