// The BPE model of a tokenizer.json (Hugging Face tokenizers' models/bpe): vocabulary, merge
// ranks, byte_fallback, unk and fuse_unk, ignore_merges, continuing_subword_prefix and
// end_of_word_suffix. Private to core/tokenizer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace unipool::tok {

class BpeModel {
 public:
  // TokenizerError for a model that is not BPE or is inconsistent (a merge naming a token
  // that is not in the vocabulary, ...).
  explicit BpeModel(const nlohmann::json& model);

  // One pre-tokenized word -> ids: characters (or byte tokens, or unk), then merges in rank
  // order, leftmost first among equal ranks.
  std::vector<int32_t> encode_word(const std::string& word) const;

  std::optional<int32_t> id(const std::string& token) const;
  const std::string* token(int32_t id) const;  // nullptr when no token has the id
  int64_t size() const { return int64_t(by_id_.size()); }

 private:
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> by_id_;
  std::vector<bool> has_id_;
  struct Merge {
    int32_t rank, result;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id)
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::optional<int32_t> unk_;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
};

}  // namespace unipool::tok
