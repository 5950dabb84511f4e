// Training text for byte-level models: a built-in synthetic multi-domain corpus and loading of
// user text. Tokens are bytes (vocabulary 256); every byte carries a domain label so that router
// specialisation can be measured against ground truth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace unipool {

// Label for bytes whose domain is not known (user text).
constexpr uint8_t kUnknownDomain = 255;

struct LabelledText {
  std::string text;
  std::vector<uint8_t> domain;            // same length as text; kUnknownDomain for user text
  std::vector<std::string> domain_names;  // names of the domain ids used (empty for user text)
};

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// {"prose", "arithmetic", "code", "records", "dna"}; index = domain id.
const std::vector<std::string>& builtin_domain_names();

// Exactly n_bytes of synthetic text made of documents of 100-600 bytes, each from one domain
// picked uniformly at random and each ending in '\n'; only the final document may be cut short.
// Bytes are identical on every platform for a given seed (integer-only RNG, no std
// distributions), and a shorter corpus is a prefix of a longer one with the same seed.
LabelledText generate_builtin_corpus(size_t n_bytes, uint64_t seed);

// Whole documents of one domain, concatenated until at least approx_bytes long (so the result
// overshoots by less than one document). DataError for a domain id outside 0..4.
std::string builtin_domain_sample(int domain, size_t approx_bytes, uint64_t seed);

// A file, or a folder whose *.txt regular files (non-recursive, sorted by file name) are
// concatenated with '\n' between them. DataError with a clear message for a missing path, an
// unreadable file or folder, a folder with no .txt files, and empty text (0 bytes of content).
LabelledText load_text_path(const std::string& path);

struct TrainValidSplit {
  LabelledText train, valid;
};

// The last `valid_fraction` (rounded to the nearest byte) of the bytes become validation.
// DataError if valid_fraction is not in (0, 1), or if either part would be shorter than
// min_bytes; the message says how many bytes are needed.
TrainValidSplit split_train_valid(const LabelledText& all, double valid_fraction, size_t min_bytes);

}  // namespace unipool
