// tokenizer.json decoders (tokens -> text): ByteLevel, Metaspace, Replace, ByteFallback,
// Fuse, Strip and Sequence, each a step over the list of token strings as the library's
// decode_chain. Private to core/tokenizer.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace unipool::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> chain(std::vector<std::string> tokens) const = 0;
};
// nullptr for null (tokens are then joined with spaces, as the library does).
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j);

}  // namespace unipool::tok
