// tokenizer.json pre-tokenizers: Sequence, Split (every split behaviour, invert), ByteLevel
// (GPT-2's byte table and regex), Metaspace, Digits.
#include "tokenizer/text_steps.h"

#include <algorithm>
#include <cstdlib>

#include "tokenizer/json_fields.h"

namespace unipool::tok {

using nlohmann::json;



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
