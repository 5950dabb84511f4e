// tokenizer.json normalizers: Sequence, Prepend, Replace, NFC/NFKC (utf8proc), Strip.
#include <utf8proc.h>

#include "tokenizer/text_steps.h"

#include <algorithm>
#include <cstdlib>

#include "tokenizer/json_fields.h"

namespace unipool::tok {

using nlohmann::json;



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

}  // namespace unipool::tok
