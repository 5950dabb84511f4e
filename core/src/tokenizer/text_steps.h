// The text-to-pieces half of a Hugging Face tokenizer: UTF-8 helpers, the regexes (PCRE2 in
// Unicode mode, which matches the patterns tokenizer.json files use: \p{L}, \p{N}, (?i:...),
// (?!\S)), normalizers (normalizers.cpp) and pre-tokenizers (pre_tokenizers.cpp). Private to
// core/tokenizer.
#pragma once

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace unipool::tok {

// Valid UTF-8 with each invalid byte replaced by U+FFFD.
std::string sanitize_utf8(const std::string& text);
// The code points' UTF-8 spellings, one string each (input must be valid UTF-8).
std::vector<std::string> utf8_chars(const std::string& text);

// GPT-2's byte <-> printable character table (byte-level BPE).
const std::array<std::string, 256>& byte_to_unicode();

// A compiled pattern: a regex, or (from {"String": ...}) a literal string.
class Pattern {
 public:
  Pattern(const nlohmann::json& pattern, const std::string& what);
  ~Pattern();
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;
  // Byte ranges [begin, end) of the non-overlapping matches, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;
  static std::unique_ptr<Pattern> regex(const std::string& regex, const std::string& what);

 private:
  Pattern() = default;
  std::string literal_;
  void* code_ = nullptr;  // pcre2_code_8*
};

// A piece of text on its way to the model, and whether it starts the original input
// (Metaspace's prepend_scheme "first" asks).
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string apply(const std::string& text) const = 0;
};
// nullptr for a null normalizer; TokenizerError for a type we do not implement.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual std::vector<Piece> apply(const std::vector<Piece>& pieces) const = 0;
};
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j);

}  // namespace unipool::tok
