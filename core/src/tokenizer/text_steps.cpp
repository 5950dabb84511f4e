#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/text_steps.h"

#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include "tokenizer/json_fields.h"

namespace unipool::tok {

using nlohmann::json;

namespace {

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

}  // namespace unipool::tok
