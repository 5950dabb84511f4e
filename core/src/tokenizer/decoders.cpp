#include "tokenizer/decoders.h"

#include <map>

#include "tokenizer/json_fields.h"
#include "tokenizer/text_steps.h"
#include "unipool/tokenizer.h"

namespace unipool::tok {

using nlohmann::json;

namespace {

class SequenceDecoder final : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> steps;
  std::vector<std::string> chain(std::vector<std::string> t) const override {
    for (const auto& s : steps) t = s->chain(std::move(t));
    return t;
  }
};

// Characters of GPT-2's table back to their bytes; other text stays as its UTF-8 bytes.
class ByteLevelDecoder final : public Decoder {
 public:
  std::vector<std::string> chain(std::vector<std::string> t) const override {
    static const std::map<std::string, char> back = [] {
      std::map<std::string, char> m;
      const auto& table = byte_to_unicode();
      for (int b = 0; b < 256; ++b) m[table[size_t(b)]] = char(b);
      return m;
    }();
    std::string bytes;
    for (const std::string& token : t)
      for (const std::string& c : utf8_chars(token)) {
        const auto it = back.find(c);
        bytes += it == back.end() ? c : std::string(1, it->second);
      }
    return {sanitize_utf8(bytes)};
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  std::string replacement = "\xE2\x96\x81";
  bool strip_first = true;  // prepend_scheme other than "never"
  std::vector<std::string> chain(std::vector<std::string> t) const override {
    for (size_t i = 0; i < t.size(); ++i) {
      std::string out;
      for (size_t at = 0; at < t[i].size();) {
        if (t[i].compare(at, replacement.size(), replacement) == 0) {
          out += ' ';
          at += replacement.size();
        } else {
          out += t[i][at++];
        }
      }
      if (i == 0 && strip_first && !out.empty() && out[0] == ' ') out.erase(0, 1);
      t[i] = out;
    }
    return t;
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  std::unique_ptr<Pattern> pattern;
  std::string content;
  std::vector<std::string> chain(std::vector<std::string> t) const override {
    for (std::string& s : t) {
      std::string out;
      size_t prev = 0;
      for (const auto& [b, e] : pattern->find_all(s)) {
        out.append(s, prev, b - prev);
        out += content;
        prev = e;
      }
      s = out + s.substr(prev);
    }
    return t;
  }
};

// Runs of "<0xAB>" tokens become their bytes when those are valid UTF-8; otherwise each
// byte becomes U+FFFD.
class ByteFallbackDecoder final : public Decoder {
 public:
  std::vector<std::string> chain(std::vector<std::string> t) const override {
    std::vector<std::string> out;
    std::string run;
    size_t run_len = 0;
    auto flush = [&] {
      if (run_len == 0) return;
      if (sanitize_utf8(run) == run) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run_len; ++i) out.push_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_len = 0;
    };
    for (const std::string& s : t) {
      unsigned value = 0;
      if (s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>' &&
          std::sscanf(s.c_str() + 3, "%2x", &value) == 1) {
        run += char(value);
        ++run_len;
        continue;
      }
      flush();
      out.push_back(s);
    }
    flush();
    return out;
  }
};

class FuseDecoder final : public Decoder {
 public:
  std::vector<std::string> chain(std::vector<std::string> t) const override {
    std::string all;
    for (const std::string& s : t) all += s;
    return {all};
  }
};

class StripDecoder final : public Decoder {
 public:
  std::string content = " ";
  size_t start = 0, stop = 0;
  std::vector<std::string> chain(std::vector<std::string> t) const override {
    for (std::string& s : t) {
      std::vector<std::string> chars = utf8_chars(s);
      size_t b = 0, e = chars.size();
      while (b < start && b < e && chars[b] == content) ++b;
      size_t removed = 0;
      while (removed < stop && e > b && chars[e - 1] == content) {
        --e;
        ++removed;
      }
      std::string out;
      for (size_t i = b; i < e; ++i) out += chars[i];
      s = out;
    }
    return t;
  }
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& j) {
  if (j.is_null()) return nullptr;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) refuse("a decoder has no type");
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    auto s = std::make_unique<SequenceDecoder>();
    if (!j.contains("decoders") || !j["decoders"].is_array())
      refuse("decoder Sequence without a \"decoders\" list");
    for (const json& d : j["decoders"])
      if (auto step = make_decoder(d)) s->steps.push_back(std::move(step));
    return s;
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    auto m = std::make_unique<MetaspaceDecoder>();
    if (j.contains("replacement") && j["replacement"].is_string())
      m->replacement = j["replacement"].get<std::string>();
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string())
      m->strip_first = j["prepend_scheme"].get<std::string>() != "never";
    else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean())
      m->strip_first = j["add_prefix_space"].get<bool>();
    return m;
  }
  if (type == "Replace") {
    auto r = std::make_unique<ReplaceDecoder>();
    r->pattern = std::make_unique<Pattern>(j.value("pattern", json()), "decoder Replace");
    r->content = j.value("content", std::string());
    return r;
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto s = std::make_unique<StripDecoder>();
    s->content = j.value("content", std::string(" "));
    s->start = j.value("start", size_t(0));
    s->stop = j.value("stop", size_t(0));
    return s;
  }
  refuse("decoder \"" + type + "\" is not supported (ByteLevel, Metaspace, Replace, "
                               "ByteFallback, Fuse, Strip and Sequence are)");
}

}  // namespace unipool::tok
