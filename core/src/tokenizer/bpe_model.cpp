#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <functional>
#include <queue>

#include "tokenizer/text_steps.h"
#include "unipool/tokenizer.h"

namespace unipool::tok {

using nlohmann::json;

namespace {

[[noreturn]] void refuse(const std::string& what) {
  throw TokenizerError("tokenizer.json: model: " + what);
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

std::string optional_string(const json& m, const char* key) {
  if (!m.contains(key) || m[key].is_null()) return "";
  if (!m[key].is_string()) refuse(std::string("\"") + key + "\" is not a string");
  return m[key].get<std::string>();
}

}  // namespace

BpeModel::BpeModel(const json& m) {
  if (!m.is_object()) refuse("missing");
  const std::string type = m.value("type", std::string("BPE"));
  if (type != "BPE") refuse("type \"" + type + "\" is not supported (BPE is)");
  if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() != 0.0)
    refuse("BPE dropout is not supported (it makes encoding random)");
  if (!m.contains("vocab") || !m["vocab"].is_object()) refuse("no \"vocab\" object");
  // The table by id is a vector: real vocabularies number their tokens 0..n-1, so an id far
  // past the token count (fuzzing found 2^31 - 1 in a 3-token vocabulary: a 17 GB table) is
  // refused rather than allocated for.
  const int64_t max_id = 4 * int64_t(m["vocab"].size()) + 65536;
  for (const auto& [token, id] : m["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      refuse("the id of token \"" + token.substr(0, 40) + "\" is not a non-negative integer");
    if (id.get<int64_t>() > max_id)
      refuse("the id " + std::to_string(id.get<int64_t>()) + " of token \"" + token.substr(0, 40) +
             "\" is far past the vocabulary's " + std::to_string(m["vocab"].size()) + " tokens");
    const int32_t i = id.get<int32_t>();
    vocab_[token] = i;
    if (size_t(i) >= by_id_.size()) {
      by_id_.resize(size_t(i) + 1);
      has_id_.resize(size_t(i) + 1, false);
    }
    by_id_[size_t(i)] = token;
    has_id_[size_t(i)] = true;
  }
  byte_fallback_ = m.value("byte_fallback", false);
  fuse_unk_ = m.value("fuse_unk", false);
  ignore_merges_ = m.value("ignore_merges", false);
  prefix_ = optional_string(m, "continuing_subword_prefix");
  suffix_ = optional_string(m, "end_of_word_suffix");
  const std::string unk = optional_string(m, "unk_token");
  if (!unk.empty()) {
    const auto it = vocab_.find(unk);
    if (it == vocab_.end()) refuse("unk_token \"" + unk + "\" is not in the vocabulary");
    unk_ = it->second;
  }
  if (!m.contains("merges") || !m["merges"].is_array()) refuse("no \"merges\" list");
  int32_t rank = 0;
  for (const json& merge : m["merges"]) {
    std::string a, b;
    if (merge.is_string()) {  // "a b" (the older format)
      const std::string s = merge.get<std::string>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) refuse("merge \"" + s.substr(0, 40) + "\" has no space");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      a = merge[0].get<std::string>();
      b = merge[1].get<std::string>();
    } else {
      refuse("merge " + std::to_string(rank) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    const auto ia = vocab_.find(a), ib = vocab_.find(b);
    // The merged token drops b's continuing prefix (tokenizers' from_files does the same).
    const std::string joined =
        a + (prefix_.empty() || b.compare(0, prefix_.size(), prefix_) != 0 ? b : b.substr(prefix_.size()));
    const auto ij = vocab_.find(joined);
    if (ia == vocab_.end() || ib == vocab_.end() || ij == vocab_.end())
      refuse("merge " + std::to_string(rank) + " (\"" + a.substr(0, 30) + "\", \"" +
             b.substr(0, 30) + "\") names a token that is not in the vocabulary");
    merges_.emplace(pair_key(ia->second, ib->second), Merge{rank, ij->second});
    ++rank;
  }
}

std::optional<int32_t> BpeModel::id(const std::string& token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::token(int32_t id) const {
  if (id < 0 || size_t(id) >= by_id_.size() || !has_id_[size_t(id)]) return nullptr;
  return &by_id_[size_t(id)];
}

std::vector<int32_t> BpeModel::encode_word(const std::string& word) const {
  if (ignore_merges_) {
    if (const auto whole = id(word)) return {*whole};
  }
  std::vector<int32_t> symbols;
  // A pending unknown (fuse_unk joins a run of them into one).
  std::optional<int32_t> unk_pending;
  const std::vector<std::string> chars = utf8_chars(word);
  for (size_t i = 0; i < chars.size(); ++i) {
    std::string s = chars[i];
    if (i > 0) s = prefix_ + s;
    if (i + 1 == chars.size()) s += suffix_;
    if (const auto known = id(s)) {
      if (unk_pending) symbols.push_back(*unk_pending);
      unk_pending.reset();
      symbols.push_back(*known);
      continue;
    }
    if (byte_fallback_) {  // "<0xE4>" per byte, when every byte has a token
      std::vector<int32_t> bytes;
      for (unsigned char c : s) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", c);
        if (const auto b = id(name)) bytes.push_back(*b);
        else break;
      }
      if (bytes.size() == s.size()) {  // (the library leaves a pending unk where it is)
        symbols.insert(symbols.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (unk_) {
      if (unk_pending && !fuse_unk_) symbols.push_back(*unk_pending);
      unk_pending = *unk_;
    }
  }
  if (unk_pending) symbols.push_back(*unk_pending);
  // Merges: the pair of lowest rank first, the leftmost among equals, until none applies. A
  // heap of candidate merges over a linked list of symbols, as the library does: a whole
  // text without a pre-tokenizer (sentencepiece-style files) is one word, and a rescan per
  // merge would be quadratic in its length.
  struct Candidate {
    int32_t rank;
    size_t pos;  // the left symbol
    int32_t result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const size_t n = symbols.size();
  std::vector<size_t> next(n), prev(n);
  std::vector<bool> removed(n, false);
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](size_t left, size_t right) {
    const auto it = merges_.find(pair_key(symbols[left], symbols[right]));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.result});
  };
  for (size_t i = 0; i < n; ++i) {
    next[i] = i + 1;  // n: none
    prev[i] = i == 0 ? n : i - 1;
    if (i + 1 < n) consider(i, i + 1);
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (removed[top.pos] || next[top.pos] >= n) continue;
    const size_t right = next[top.pos];
    // A stale entry: the pair there has changed since it was queued.
    const auto it = merges_.find(pair_key(symbols[top.pos], symbols[right]));
    if (it == merges_.end() || it->second.result != top.result) continue;
    symbols[top.pos] = top.result;
    removed[right] = true;
    next[top.pos] = next[right];
    if (next[right] < n) prev[next[right]] = top.pos;
    if (prev[top.pos] < n) consider(prev[top.pos], top.pos);
    if (next[top.pos] < n) consider(top.pos, next[top.pos]);
  }
  std::vector<int32_t> merged;
  for (size_t i = 0; i < n; ++i)
    if (!removed[i]) merged.push_back(symbols[i]);
  return merged;
}


}  // namespace unipool::tok
