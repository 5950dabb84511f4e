// Tokenizers of downloaded models, read from their tokenizer.json: BPE as Hugging Face's
// `tokenizers` library defines it, byte-level (GPT-2 style, with the pre-tokenizer's regex)
// or sentencepiece-style (Metaspace / Replace+Prepend normalizers, byte_fallback), with added
// and special tokens, the post-processor's template and the decoder. The ids must equal that
// library's on the same file and text (tests/tokenizer fixtures). Plain C++ (no torch, no Qt).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace unipool {

// A tokenizer.json we cannot read, or one using a component we do not implement (the message
// names it).
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Tokenizer {
 public:
  static std::unique_ptr<Tokenizer> from_file(const std::string& path);
  // `what` names the source in error messages.
  static std::unique_ptr<Tokenizer> from_json(const std::string& json, const std::string& what);
  // A model folder's tokenizer.json, and its tokenizer_config.json where there is one: when
  // that sets add_bos_token and the post-processor adds no BOS of its own (DeepSeek-V3's
  // tokenizer.json has no template, transformers' tokenizer class adds the BOS), encode(text,
  // true) starts with the BOS as transformers does (SPEC section 10).
  static std::unique_ptr<Tokenizer> from_model_folder(const std::string& folder);
  ~Tokenizer();

  // UTF-8 text -> ids. `add_special`: apply the post-processor's template (BOS, ...); added
  // and special tokens written in the text are recognised either way, as the library does.
  // Invalid UTF-8 is read as U+FFFD (the library refuses non-UTF-8 strings).
  std::vector<int32_t> encode(const std::string& text, bool add_special) const;
  // ids -> text through the decoder; special tokens left out when `skip_special`.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // One token for display: its text as the decoder gives it alone ("" for an unknown id).
  std::string piece(int32_t id) const;
  int64_t vocab_size() const;  // the largest id + 1
  // The BOS that encode(text, true) puts first when the template did not (-1: none).
  int32_t extra_bos() const;

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unipool
