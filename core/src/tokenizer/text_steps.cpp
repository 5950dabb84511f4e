#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/text_steps.h"

#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include "unipool/tokenizer.h"

namespace unipool::tok {

using nlohmann::json;

namespace {

[[noreturn]] void refuse(const std::string& what) { throw TokenizerError("tokenizer.json: " + what); }

std::string type_of(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) refuse("a step has no \"type\"");
  return j["type"].get<std::string>();
}

std::string string_field(const json& j, const char* key, const std::string& fallback = "") {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) refuse(std::string("\"") + key + "\" is not a string");
  return j[key].get<std::string>();
}

bool bool_field(const json& j, const char* key, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) refuse(std::string("\"") + key + "\" is not true or false");
  return j[key].get<bool>();
}

// Length of the UTF-8 sequence starting at s[i] if it is valid there, else 0.
size_t valid_sequence(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  uint32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (b(i + k) & 0x3F);
  const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;  // overlong
  return n;
}

}  // namespace

std::string sanitize_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = valid_sequence(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text, i, n);
      i += n;
    }
  }
  return out;
}

std::vector<std::string> utf8_chars(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::max<size_t>(1, valid_sequence(text, i));
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(next++);
      // Code points below 0x800: one or two UTF-8 bytes.
      t[size_t(b)] = cp < 0x80 ? std::string(1, char(cp))
                               : std::string{char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    }
    return t;
  }();
  return table;
}

// ---- patterns -------------------------------------------------------------------------------

Pattern::Pattern(const json& p, const std::string& what) {
  if (p.is_object() && p.contains("String") && p["String"].is_string()) {
    literal_ = p["String"].get<std::string>();
    if (literal_.empty()) refuse(what + ": an empty split string");
    return;
  }
  if (!p.is_object() || !p.contains("Regex") || !p["Regex"].is_string())
    refuse(what + ": a pattern is neither {\"String\": ...} nor {\"Regex\": ...}");
  const std::string regex = p["Regex"].get<std::string>();
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(),
                        PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code_) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    refuse(what + ": regex " + regex.substr(0, 80) + " does not compile at " +
           std::to_string(offset) + ": " + reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(static_cast<pcre2_code*>(code_), PCRE2_JIT_COMPLETE);  // faster when it works
}

std::unique_ptr<Pattern> Pattern::regex(const std::string& regex, const std::string& what) {
  return std::make_unique<Pattern>(json{{"Regex", regex}}, what);
}

Pattern::~Pattern() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(const std::string& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  if (!code_) {
    for (size_t at = text.find(literal_); at != std::string::npos;
         at = text.find(literal_, at + literal_.size()))
      out.push_back({at, at + literal_.size()});
    return out;
  }
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;  // no more matches (errors cannot occur on valid UTF-8 with these limits)
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.push_back({b, e});
      start = e;
    } else {  // an empty match: step over one character
      start = b + std::max<size_t>(1, valid_sequence(text, b));
      if (b >= text.size()) break;
    }
  }
  pcre2_match_data_free(md);
  return out;
}

// ---- normalizers ----------------------------------------------------------------------------

namespace {

class Sequence final : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> steps;
  std::string apply(const std::string& t) const override {
    std::string s = t;
    for (const auto& n : steps) s = n->apply(s);
    return s;
  }
};

class Prepend final : public Normalizer {
 public:
  std::string prefix;
  std::string apply(const std::string& t) const override { return t.empty() ? t : prefix + t; }
};

class Replace final : public Normalizer {
 public:
  std::unique_ptr<Pattern> pattern;
  std::string content;
  std::string apply(const std::string& t) const override {
    std::string out;
    size_t prev = 0;
    for (const auto& [b, e] : pattern->find_all(t)) {
      out.append(t, prev, b - prev);
      out += content;
      prev = e;
    }
    return out + t.substr(prev);
  }
};

class Unicode final : public Normalizer {
 public:
  bool compat = false;  // NFKC rather than NFC
  std::string apply(const std::string& t) const override {
    if (t.empty()) return t;
    utf8proc_uint8_t* out = nullptr;
    const auto options = utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                           (compat ? UTF8PROC_COMPAT : 0));
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(t.data()),
                                            utf8proc_ssize_t(t.size()), &out, options);
    if (n < 0) return t;  // input is valid UTF-8 by now; keep it as it is otherwise
    std::string s(reinterpret_cast<char*>(out), size_t(n));
    std::free(out);
    return s;
  }
};

class Strip final : public Normalizer {
 public:
  bool left = true, right = true;
  std::string apply(const std::string& t) const override {
    size_t b = 0, e = t.size();
    if (left) while (b < e && std::isspace(static_cast<unsigned char>(t[b]))) ++b;
    if (right) while (e > b && std::isspace(static_cast<unsigned char>(t[e - 1]))) --e;
    return t.substr(b, e - b);
  }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j);
  if (type == "Sequence") {
    auto s = std::make_unique<Sequence>();
    if (!j.contains("normalizers") || !j["normalizers"].is_array())
      refuse("normalizer Sequence without a \"normalizers\" list");
    for (const json& n : j["normalizers"])
      if (auto step = make_normalizer(n)) s->steps.push_back(std::move(step));
    return s;
  }
  if (type == "Prepend") {
    auto p = std::make_unique<Prepend>();
    p->prefix = string_field(j, "prepend");
    return p;
  }
  if (type == "Replace") {
    auto r = std::make_unique<Replace>();
    r->pattern = std::make_unique<Pattern>(j.value("pattern", json()), "normalizer Replace");
    r->content = string_field(j, "content");
    return r;
  }
  if (type == "NFC" || type == "NFKC") {
    auto u = std::make_unique<Unicode>();
    u->compat = type == "NFKC";
    return u;
  }
  if (type == "Strip") {
    auto s = std::make_unique<Strip>();
    s->left = bool_field(j, "strip_left", true);
    s->right = bool_field(j, "strip_right", true);
    return s;
  }
  refuse("normalizer \"" + type + "\" is not supported (Sequence, Prepend, Replace, NFC, NFKC "
                                  "and Strip are)");
}

// ---- pre-tokenizers -------------------------------------------------------------------------

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// The library's split: matches and the gaps between them, then `behavior` decides what
// becomes a piece. `invert` swaps which ranges count as matches.
std::vector<Piece> split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& m,
                               Behavior behavior, bool invert) {
  struct Range {
    size_t b, e;
    bool match;
  };
  std::vector<Range> ranges;
  size_t prev = 0;
  for (const auto& [b, e] : m) {
    if (b > prev) ranges.push_back({prev, b, invert});
    ranges.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < piece.text.size()) ranges.push_back({prev, piece.text.size(), invert});
  // The library's folds: a match joins the piece before it (MergedWithPrevious) or after it
  // (MergedWithNext, folded from the right); Contiguous joins neighbours of the same kind.
  std::vector<std::pair<size_t, size_t>> out;
  bool previous_match = false;
  if (behavior == Behavior::MergedWithNext) {
    for (size_t i = ranges.size(); i-- > 0;) {
      const Range& r = ranges[i];
      if (r.match && !previous_match && !out.empty()) out.back().first = r.b;
      else out.push_back({r.b, r.e});
      previous_match = r.match;
    }
    std::reverse(out.begin(), out.end());
  }
  for (size_t i = 0; i < ranges.size() && behavior != Behavior::MergedWithNext; ++i) {
    const Range& r = ranges[i];
    if (behavior == Behavior::Removed) {
      if (!r.match) out.push_back({r.b, r.e});
    } else if (behavior == Behavior::Isolated) {
      out.push_back({r.b, r.e});
    } else if (behavior == Behavior::MergedWithPrevious && r.match && !previous_match &&
               !out.empty()) {
      out.back().second = r.e;
    } else if (behavior == Behavior::Contiguous && r.match == previous_match && !out.empty()) {
      out.back().second = r.e;
    } else {
      out.push_back({r.b, r.e});
    }
    previous_match = r.match;
  }
  std::vector<Piece> pieces;
  for (const auto& [b, e] : out)
    if (e > b) pieces.push_back({piece.text.substr(b, e - b), piece.at_start && b == 0});
  return pieces;
}

Behavior parse_behavior(const std::string& s) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  refuse("split behavior \"" + s + "\" is unknown");
}

class SequencePre final : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  std::vector<Piece> apply(const std::vector<Piece>& in) const override {
    std::vector<Piece> p = in;
    for (const auto& s : steps) p = s->apply(p);
    return p;
  }
};

class Split final : public PreTokenizer {
 public:
  std::unique_ptr<Pattern> pattern;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  std::vector<Piece> apply(const std::vector<Piece>& in) const override {
    std::vector<Piece> out;
    for (const Piece& p : in)
      for (Piece& q : split_piece(p, pattern->find_all(p.text), behavior, invert))
        out.push_back(std::move(q));
    return out;
  }
};

// GPT-2's pattern, the ByteLevel pre-tokenizer's own when use_regex is true.
const char* const kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel final : public PreTokenizer {
 public:
  bool add_prefix_space = false;
  std::unique_ptr<Pattern> regex;  // null: use_regex false
  std::vector<Piece> apply(const std::vector<Piece>& in) const override {
    std::vector<Piece> split;
    for (Piece p : in) {
      if (add_prefix_space && p.text.compare(0, 1, " ") != 0) p.text = " " + p.text;
      if (!regex) {
        split.push_back(p);
        continue;
      }
      for (Piece& q : split_piece(p, regex->find_all(p.text), Behavior::Isolated, false))
        split.push_back(std::move(q));
    }
    const auto& table = byte_to_unicode();
    for (Piece& p : split) {
      std::string mapped;
      for (unsigned char c : p.text) mapped += table[c];
      p.text = std::move(mapped);
    }
    return split;
  }
};

class Metaspace final : public PreTokenizer {
 public:
  std::string replacement = "\xE2\x96\x81";  // U+2581
  std::string prepend_scheme = "always";
  bool split = true;
  std::vector<Piece> apply(const std::vector<Piece>& in) const override {
    std::vector<Piece> out;
    for (Piece p : in) {
      std::string t;
      for (char c : p.text) t += c == ' ' ? replacement : std::string(1, c);
      const bool starts = t.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (prepend_scheme == "always" || (prepend_scheme == "first" && p.at_start)))
        t = replacement + t;
      p.text = t;
      if (!split) {
        out.push_back(p);
        continue;
      }
      Pattern literal(json{{"String", replacement}}, "Metaspace");
      for (Piece& q : split_piece(p, literal.find_all(p.text), Behavior::MergedWithNext, false))
        out.push_back(std::move(q));
    }
    return out;
  }
};

class Digits final : public PreTokenizer {
 public:
  bool individual = false;
  std::vector<Piece> apply(const std::vector<Piece>& in) const override {
    std::vector<Piece> out;
    for (const Piece& p : in) {
      std::vector<std::pair<size_t, size_t>> m;
      for (size_t i = 0; i < p.text.size(); ++i)
        if (std::isdigit(static_cast<unsigned char>(p.text[i]))) m.push_back({i, i + 1});
      for (Piece& q : split_piece(p, m, individual ? Behavior::Isolated : Behavior::Contiguous, false))
        out.push_back(std::move(q));
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j);
  if (type == "Sequence") {
    auto s = std::make_unique<SequencePre>();
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      refuse("pre_tokenizer Sequence without a \"pretokenizers\" list");
    for (const json& p : j["pretokenizers"])
      if (auto step = make_pre_tokenizer(p)) s->steps.push_back(std::move(step));
    return s;
  }
  if (type == "Split") {
    auto s = std::make_unique<Split>();
    s->pattern = std::make_unique<Pattern>(j.value("pattern", json()), "pre_tokenizer Split");
    s->behavior = parse_behavior(string_field(j, "behavior", "Isolated"));
    s->invert = bool_field(j, "invert", false);
    return s;
  }
  if (type == "ByteLevel") {
    auto b = std::make_unique<ByteLevel>();
    b->add_prefix_space = bool_field(j, "add_prefix_space", true);
    if (bool_field(j, "use_regex", true)) b->regex = Pattern::regex(kGpt2Regex, "ByteLevel");
    return b;
  }
  if (type == "Metaspace") {
    auto m = std::make_unique<Metaspace>();
    m->replacement = string_field(j, "replacement", m->replacement);
    if (j.contains("prepend_scheme")) {
      m->prepend_scheme = string_field(j, "prepend_scheme", "always");
    } else {
      m->prepend_scheme = bool_field(j, "add_prefix_space", true) ? "always" : "never";
    }
    if (m->prepend_scheme != "always" && m->prepend_scheme != "first" &&
        m->prepend_scheme != "never")
      refuse("Metaspace prepend_scheme \"" + m->prepend_scheme + "\" is unknown");
    m->split = bool_field(j, "split", true);
    return m;
  }
  if (type == "Digits") {
    auto d = std::make_unique<Digits>();
    d->individual = bool_field(j, "individual_digits", false);
    return d;
  }
  refuse("pre_tokenizer \"" + type + "\" is not supported (Sequence, Split, ByteLevel, "
                                     "Metaspace and Digits are)");
}

}  // namespace unipool::tok
