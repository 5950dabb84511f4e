// tokenizer.json, then a text: the loader accepts it or throws TokenizerError; an accepted
// tokenizer encodes any bytes (invalid UTF-8 included) and decodes any ids.
#include <cstdlib>

#include "fuzz_input.h"
#include "unipool/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = unipool::fuzz::split_input(data, size, 2);
  std::unique_ptr<unipool::Tokenizer> tokenizer;
  try {
    tokenizer = unipool::Tokenizer::from_json(parts[0], "fuzz");
  } catch (const unipool::TokenizerError&) {
    return 0;
  }
  try {
    const std::vector<int32_t> ids = tokenizer->encode(parts[1], true);
    for (int32_t id : ids)
      if (id < 0 || id >= tokenizer->vocab_size()) std::abort();
    (void)tokenizer->decode(ids, false);
    (void)tokenizer->decode(ids, true);
    // Ids the tokenizer never gave: out of range, negative.
    std::vector<int32_t> wild;
    for (unsigned char c : parts[1]) wild.push_back(int32_t(c) * 131 - 3000);
    (void)tokenizer->decode(wild, false);
    for (int32_t id : wild) (void)tokenizer->piece(id);
  } catch (const unipool::TokenizerError&) {
    // A tokenizer may refuse a text it cannot represent (no byte fallback, no unk token).
  }
  return 0;
}
