// The built-in corpus: five labelled domains (prose, arithmetic, code, records, DNA) from
// small grammars, generated from a seed, so every machine trains on the same bytes.
#include <algorithm>
#include <cmath>
#include <string>

#include "unipool/corpus.h"
#include "unipool/random.h"

namespace unipool {
namespace {

// The shared generator on the classic SplitMix64 sequence (unipool/random.h), with the
// helpers the grammar needs. Integer-only, so the corpus is identical everywhere.
class CorpusRng {
 public:
  explicit CorpusRng(uint64_t seed) : rng_(Rng::splitmix_sequence(seed)) {}

  uint32_t below(uint32_t n) { return rng_.below_u32(n); }
  uint32_t range(uint32_t lo, uint32_t hi) { return lo + below(hi - lo + 1); }
  bool percent(uint32_t p) { return below(100) < p; }

  template <size_t N>
  const char* pick(const char* const (&list)[N]) {
    return list[below(static_cast<uint32_t>(N))];
  }
  uint64_t next() { return rng_.next(); }

 private:
  Rng rng_;
};

constexpr size_t kMinDoc = 100;
constexpr size_t kMaxDoc = 600;

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out += buf[--n];
}

// ---- prose: a small grammar over word lists -------------------------------------------------

const char* const kDeterminers[] = {"the", "a",   "every", "this", "that",
                                    "my",  "our", "one",   "some", "no"};
const char* const kAdjectives[] = {"old",    "quiet",  "bright",  "small", "heavy",  "green",
                                   "clever", "tired",  "ancient", "empty", "warm",   "strange",
                                   "gentle", "broken", "golden",  "young", "narrow", "distant"};
const char* const kNouns[] = {
    "river",  "garden", "teacher", "window", "village", "horse",  "letter", "mountain", "child",
    "market", "storm",  "bridge",  "doctor", "kitchen", "forest", "song",   "ship",     "lamp",
    "farmer", "city",   "island",  "book",   "painter", "road",   "castle", "bird"};
// {past, base} so statements and questions can share one list.
const char* const kVerbs[][2] = {
    {"found", "find"},          {"watched", "watch"}, {"carried", "carry"}, {"painted", "paint"},
    {"followed", "follow"},     {"opened", "open"},   {"built", "build"},   {"crossed", "cross"},
    {"remembered", "remember"}, {"visited", "visit"}, {"sold", "sell"},     {"heard", "hear"},
    {"loved", "love"},          {"cleaned", "clean"}, {"saw", "see"},       {"left", "leave"}};
const char* const kAdverbs[] = {"slowly", "quickly", "quietly", "never",
                                "often",  "finally", "almost",  "gladly"};
const char* const kPrepositions[] = {"near",   "behind", "under",  "across",
                                     "beside", "beyond", "inside", "along"};
const char* const kNames[] = {"Anna",  "Tomas", "Mira",   "Jonah", "Elena",
                              "Oskar", "Lena",  "Victor", "Ruth",  "Samuel"};
const char* const kConnectives[] = {", and ", ", but ", " while ", " because ", ", so "};

void noun_phrase(CorpusRng& rng, std::string& out) {
  if (rng.percent(15)) {
    out += rng.pick(kNames);
    return;
  }
  const char* det = rng.pick(kDeterminers);
  const char* adj = rng.percent(45) ? rng.pick(kAdjectives) : nullptr;
  const char* first = adj ? adj : rng.pick(kNouns);
  const bool vowel = std::string("aeiou").find(first[0]) != std::string::npos;
  out += (det[0] == 'a' && det[1] == '\0' && vowel) ? "an" : det;
  out += ' ';
  out += first;
  if (adj) {
    out += ' ';
    out += rng.pick(kNouns);
  }
}

void clause(CorpusRng& rng, std::string& out) {
  noun_phrase(rng, out);
  if (rng.percent(20)) {
    out += ' ';
    out += rng.pick(kAdverbs);
  }
  out += ' ';
  out += kVerbs[rng.below(std::size(kVerbs))][0];
  out += ' ';
  noun_phrase(rng, out);
  if (rng.percent(30)) {
    out += ' ';
    out += rng.pick(kPrepositions);
    out += ' ';
    noun_phrase(rng, out);
  }
}

void prose_unit(CorpusRng& rng, std::string& out) {
  const size_t start = out.size();
  if (rng.percent(12)) {
    out += "why did ";
    noun_phrase(rng, out);
    out += ' ';
    out += kVerbs[rng.below(std::size(kVerbs))][1];
    out += ' ';
    noun_phrase(rng, out);
    out += '?';
  } else {
    clause(rng, out);
    if (rng.percent(35)) {
      out += rng.pick(kConnectives);
      clause(rng, out);
    }
    out += rng.percent(10) ? '!' : '.';
  }
  char& first = out[start];
  if (first >= 'a' && first <= 'z') first = static_cast<char>(first - 'a' + 'A');
  out += rng.percent(15) ? '\n' : ' ';  // occasional paragraph break
}

// ---- arithmetic: one correct equation per line ----------------------------------------------

void arithmetic_unit(CorpusRng& rng, std::string& out) {
  uint64_t a = 0, b = 0, c = 0;
  char op = '+';
  switch (rng.below(4)) {
    case 0:
      a = rng.below(rng.percent(70) ? 100 : 1000);
      b = rng.below(rng.percent(70) ? 100 : 1000);
      c = a + b;
      break;
    case 1:  // keep results non-negative so every line has one simple form
      op = '-';
      a = rng.below(1000);
      b = rng.below(static_cast<uint32_t>(a + 1));
      c = a - b;
      break;
    case 2:
      op = '*';
      a = rng.below(100);
      b = rng.below(13);
      c = a * b;
      break;
    default:  // exact division only
      op = '/';
      b = rng.range(1, 12);
      c = rng.below(100);
      a = b * c;
      break;
  }
  append_uint(out, a);
  out += op;
  append_uint(out, b);
  out += '=';
  append_uint(out, c);
  out += '\n';
}

// ---- code: C-like statements and small blocks -----------------------------------------------

const char* const kVars[] = {"i", "n", "x", "y", "count", "total", "idx", "sum", "len", "acc"};
const char* const kFuncs[] = {"compute", "update", "print_value", "max", "min",
                              "push",    "reset",  "load_row",    "hash"};
const char* const kArrays[] = {"data", "buf", "items", "weights", "table"};
const char* const kOps[] = {"+", "-", "*", "/", "%", "^", "&"};
const char* const kCmps[] = {"<", ">", "<=", ">=", "==", "!="};

void code_unit(CorpusRng& rng, std::string& out) {
  const char* v = rng.pick(kVars);
  const char* w = rng.pick(kVars);
  const char* arr = rng.pick(kArrays);
  const char* f = rng.pick(kFuncs);
  const uint64_t k = rng.below(rng.percent(50) ? 10 : 256);
  const std::string ks = [&] {
    std::string s;
    append_uint(s, k);
    return s;
  }();
  switch (rng.below(7)) {
    case 0:
      out += std::string("int ") + v + " = " + ks + ";\n";
      break;
    case 1:
      out += std::string(v) + " = " + w + " " + rng.pick(kOps) + " " + ks + ";\n";
      break;
    case 2:
      out += std::string(f) + "(" + v + ", " + arr + "[" + ks + "]);\n";
      break;
    case 3:
      out += std::string("for (int j = 0; j < ") + v + "; ++j) {\n  " + arr + "[j] = " + arr +
             "[j] " + rng.pick(kOps) + " " + ks + ";\n}\n";
      break;
    case 4:
      out += std::string("if (") + v + " " + rng.pick(kCmps) + " " + ks + ") {\n  " + w + " = " +
             f + "(" + v + ");\n} else {\n  " + w + " += 1;\n}\n";
      break;
    case 5:
      out += std::string("for (int j = 0; j < ") + ks + "; j++) {\n  if (" + arr + "[j] " +
             rng.pick(kCmps) + " " + v + ") {\n    " + w + " += " + arr + "[j];\n  }\n}\n";
      break;
    default:
      out += std::string("while (") + v + " != 0) {\n  " + v + "--;\n}\nreturn " + w + ";\n";
      break;
  }
}

// ---- records: JSON-ish or key=value lines ---------------------------------------------------

const char* const kPeople[] = {"Mara",  "Jonas", "Ines", "Piotr", "Aiko", "Luca",  "Noor", "Sven",
                               "Zofia", "Omar",  "Lea",  "Hugo",  "Yara", "Felix", "Ada",  "Ravi"};
const char* const kCities[] = {"Lyon",  "Oslo",  "Porto", "Kyoto", "Graz",  "Quito", "Lagos",
                               "Perth", "Turin", "Malmo", "Hanoi", "Leeds", "Cusco", "Riga"};

void append_score(CorpusRng& rng, std::string& out) {
  const uint32_t hundredths = rng.below(100);
  out += "0.";
  out += static_cast<char>('0' + hundredths / 10);
  out += static_cast<char>('0' + hundredths % 10);
}

void record_unit(CorpusRng& rng, std::string& out) {
  const uint32_t id = rng.range(1000, 9999);
  const char* name = rng.pick(kPeople);
  const char* city = rng.pick(kCities);
  if (rng.percent(60)) {
    out += "{\"id\": ";
    append_uint(out, id);
    out += std::string(", \"name\": \"") + name + "\", \"city\": \"" + city + "\", \"score\": ";
    append_score(rng, out);
    out += "}\n";
  } else {
    out += "id=";
    append_uint(out, id);
    out += std::string(" name=") + name + " city=" + city + " score=";
    append_score(rng, out);
    out += rng.percent(50) ? " active=true\n" : " active=false\n";
  }
}

// ---- dna: 60 bases per line -----------------------------------------------------------------

void dna_unit(CorpusRng& rng, std::string& out) {
  static const char kBases[] = {'A', 'C', 'G', 'T'};
  uint64_t bits = 0;
  for (int i = 0; i < 60; ++i) {
    if (i % 32 == 0) bits = rng.next();  // one draw feeds 32 bases
    out += kBases[bits & 3];
    bits >>= 2;
  }
  out += '\n';
}

using UnitFn = void (*)(CorpusRng&, std::string&);
constexpr UnitFn kUnits[] = {prose_unit, arithmetic_unit, code_unit, record_unit, dna_unit};
constexpr uint32_t kNumDomains = 5;

// Appends whole units until the document reaches a random target length. Units are short
// (< 200 bytes), so documents stay within [kMinDoc, kMaxDoc] without cutting any line.
void append_document(int domain, CorpusRng& rng, std::string& out) {
  const size_t target = rng.range(kMinDoc, kMaxDoc);
  const size_t start = out.size();
  std::string unit;
  for (;;) {
    unit.clear();
    kUnits[domain](rng, unit);
    const size_t len = out.size() - start;
    if (len >= kMinDoc && len + unit.size() > target) break;
    out += unit;
  }
  if (out.back() == ' ') out.back() = '\n';  // prose units end in a space
}

}  // namespace

const std::vector<std::string>& builtin_domain_names() {
  static const std::vector<std::string> names = {"prose", "arithmetic", "code", "records", "dna"};
  return names;
}

LabelledText generate_builtin_corpus(size_t n_bytes, uint64_t seed) {
  constexpr size_t kMaxBytes = size_t(1) << 30;  // also keeps n_bytes + kMaxDoc from wrapping
  if (n_bytes > kMaxBytes) {
    throw DataError("built-in corpus size " + std::to_string(n_bytes) + " exceeds the maximum of " +
                    std::to_string(kMaxBytes) + " bytes");
  }
  CorpusRng rng(seed);
  LabelledText out;
  out.text.reserve(n_bytes + kMaxDoc);
  out.domain.reserve(n_bytes + kMaxDoc);
  while (out.text.size() < n_bytes) {
    const uint32_t d = rng.below(kNumDomains);
    append_document(static_cast<int>(d), rng, out.text);
    out.domain.resize(out.text.size(), static_cast<uint8_t>(d));
  }
  out.text.resize(n_bytes);
  out.domain.resize(n_bytes);
  out.domain_names = builtin_domain_names();
  return out;
}

std::string builtin_domain_sample(int domain, size_t approx_bytes, uint64_t seed) {
  if (domain < 0 || domain >= static_cast<int>(kNumDomains)) {
    throw DataError("builtin_domain_sample: domain id " + std::to_string(domain) +
                    " is out of range 0.." + std::to_string(kNumDomains - 1));
  }
  // Mix the domain into the seed so samples of different domains are independent streams.
  CorpusRng rng(seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(domain + 1)));
  std::string out;
  while (out.size() < approx_bytes) append_document(domain, rng, out);
  return out;
}

}  // namespace unipool
