// A tokenizer.json as Hugging Face's tokenizers runs it: added tokens are split out of the
// text first (those with normalized false on the raw text, the others after normalization),
// each remaining segment is normalized, pre-tokenized and BPE-encoded, then the
// post-processor's template adds BOS and the like.
#include "unipool/tokenizer.h"

#include <fstream>
#include <map>
#include <sstream>

#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/text_steps.h"

namespace unipool {

using nlohmann::json;
using tok::refuse;

namespace {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

bool is_space_at(const std::string& s, size_t i) {
  return s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' ||
         s[i] == '\f';
}

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

// Leftmost-longest matches of `tokens` (by first byte) in `text`, with the tokens'
// single_word, lstrip and rstrip rules. Returns (token index or -1, begin, end) ranges
// covering the text.
struct Segment {
  int token = -1;
  size_t begin = 0, end = 0;
};

class AddedMatcher {
 public:
  void add(int index, const std::string& content) {
    if (content.empty()) return;
    by_first_[static_cast<unsigned char>(content[0])].push_back({index, content});
  }
  bool empty() const { return by_first_.empty(); }

  std::vector<Segment> split(const std::string& text, const std::vector<AddedToken>& tokens) const {
    std::vector<Segment> out;
    size_t done = 0;  // text before this is in `out`
    for (size_t i = 0; i < text.size();) {
      const auto it = by_first_.find(static_cast<unsigned char>(text[i]));
      int best = -1;
      size_t best_len = 0;
      if (it != by_first_.end())
        for (const auto& [index, content] : it->second)
          if (content.size() > best_len && text.compare(i, content.size(), content) == 0) {
            best = index;
            best_len = content.size();
          }
      if (best < 0) {
        ++i;
        continue;
      }
      const AddedToken& t = tokens[size_t(best)];
      size_t b = i, e = i + best_len;
      if (t.single_word && ((b > 0 && is_word_byte(static_cast<unsigned char>(text[b - 1]))) ||
                            (e < text.size() && is_word_byte(static_cast<unsigned char>(text[e]))))) {
        ++i;
        continue;
      }
      if (t.lstrip)
        while (b > done && is_space_at(text, b - 1)) --b;
      if (t.rstrip)
        while (e < text.size() && is_space_at(text, e)) ++e;
      if (b > done) out.push_back({-1, done, b});
      out.push_back({best, b, e});
      done = e;
      i = e;
    }
    if (done < text.size()) out.push_back({-1, done, text.size()});
    return out;
  }

 private:
  std::map<unsigned char, std::vector<std::pair<int, std::string>>> by_first_;
};

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError(path + ": cannot open file");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  std::unique_ptr<tok::Decoder> decoder;
  std::vector<AddedToken> added;
  std::map<int32_t, size_t> added_by_id;
  AddedMatcher raw_matcher, normalized_matcher;  // normalized false / true
  std::vector<int32_t> prefix_ids, suffix_ids;   // the template around the sequence
  int32_t extra_bos = -1;                          // tokenizer_config.json's add_bos_token

  void read_post_processor(const json& p);
  void encode_segment(const std::string& text, bool at_start, std::vector<int32_t>& out) const;
  std::string token_text(int32_t id) const;
};

void Tokenizer::Impl::read_post_processor(const json& p) {
  if (p.is_null()) return;
  const std::string type = p.value("type", std::string());
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    if (!p.contains("processors") || !p["processors"].is_array())
      refuse("post_processor Sequence without \"processors\"");
    for (const json& q : p["processors"]) read_post_processor(q);
    return;
  }
  if (type == "TemplateProcessing") {
    if (!p.contains("single") || !p["single"].is_array()) refuse("TemplateProcessing without \"single\"");
    bool after = false;
    for (const json& item : p["single"]) {
      if (item.contains("Sequence")) {
        after = true;
        continue;
      }
      if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id"))
        refuse("a TemplateProcessing item is neither Sequence nor SpecialToken");
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      const json& specials = p.value("special_tokens", json::object());
      if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
        refuse("TemplateProcessing names special token \"" + name + "\" without its ids");
      for (const json& id : specials[name]["ids"]) (after ? suffix_ids : prefix_ids).push_back(tok::token_id(id));
    }
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    prefix_ids.push_back(tok::token_id(p.at("cls").at(1)));
    suffix_ids.push_back(tok::token_id(p.at("sep").at(1)));
    return;
  }
  refuse("post_processor \"" + type + "\" is not supported");
}

void Tokenizer::Impl::encode_segment(const std::string& text, bool at_start,
                                     std::vector<int32_t>& out) const {
  const std::string normalized = normalizer ? normalizer->apply(text) : text;
  // Added tokens that match on normalized text are split out after normalization.
  const std::vector<Segment> parts = normalized_matcher.empty()
                                         ? std::vector<Segment>{{-1, 0, normalized.size()}}
                                         : normalized_matcher.split(normalized, added);
  for (const Segment& s : parts) {
    if (s.token >= 0) {
      out.push_back(added[size_t(s.token)].id);
      continue;
    }
    std::vector<tok::Piece> pieces = {{normalized.substr(s.begin, s.end - s.begin), at_start && s.begin == 0}};
    if (pieces[0].text.empty()) continue;
    if (pre_tokenizer) pieces = pre_tokenizer->apply(pieces);
    for (const tok::Piece& p : pieces)
      for (int32_t id : model->encode_word(p.text)) out.push_back(id);
  }
}

std::string Tokenizer::Impl::token_text(int32_t id) const {
  const auto a = added_by_id.find(id);
  if (a != added_by_id.end()) return added[a->second].content;
  const std::string* t = model->token(id);
  return t ? *t : std::string();
}

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::string& path) {
  return from_json(read_whole(path), path);
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(const std::string& text, const std::string& what) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw TokenizerError(what + ": not a JSON object");
  std::unique_ptr<Tokenizer> t(new Tokenizer);
  Impl& d = *t->impl_;
  try {
    if (!j.contains("model")) refuse("no \"model\"");
    d.model = std::make_unique<tok::BpeModel>(j["model"]);
    d.normalizer = tok::make_normalizer(j.value("normalizer", json()));
    d.pre_tokenizer = tok::make_pre_tokenizer(j.value("pre_tokenizer", json()));
    d.decoder = tok::make_decoder(j.value("decoder", json()));
    d.read_post_processor(j.value("post_processor", json()));
    for (const json& a : j.value("added_tokens", json::array())) {
      AddedToken token;
      token.id = tok::token_id(a.at("id"));
      token.content = a.at("content").get<std::string>();
      token.special = a.value("special", false);
      token.lstrip = a.value("lstrip", false);
      token.rstrip = a.value("rstrip", false);
      token.single_word = a.value("single_word", false);
      token.normalized = a.value("normalized", !token.special);
      d.added_by_id[token.id] = d.added.size();
      const int index = int(d.added.size());
      if (token.normalized) {  // matched on normalized text: its content normalized too
        d.normalized_matcher.add(index, d.normalizer ? d.normalizer->apply(token.content) : token.content);
      } else {
        d.raw_matcher.add(index, token.content);
      }
      d.added.push_back(std::move(token));
    }
  } catch (const json::exception& e) {
    throw TokenizerError(what + ": " + e.what());
  } catch (const TokenizerError& e) {
    throw TokenizerError(what + ": " + e.what());
  }
  return t;
}

std::vector<int32_t> Tokenizer::encode(const std::string& input, bool add_special) const {
  const Impl& d = *impl_;
  const std::string text = tok::sanitize_utf8(input);
  std::vector<int32_t> ids;
  if (add_special) ids = d.prefix_ids;
  for (const Segment& s : d.raw_matcher.split(text, d.added)) {
    if (s.token >= 0) ids.push_back(d.added[size_t(s.token)].id);
    else d.encode_segment(text.substr(s.begin, s.end - s.begin), s.begin == 0, ids);
  }
  if (add_special) ids.insert(ids.end(), d.suffix_ids.begin(), d.suffix_ids.end());
  if (add_special && d.extra_bos >= 0 && (ids.empty() || ids.front() != d.extra_bos))
    ids.insert(ids.begin(), d.extra_bos);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& d = *impl_;
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    const auto a = d.added_by_id.find(id);
    if (skip_special && a != d.added_by_id.end() && d.added[a->second].special) continue;
    tokens.push_back(d.token_text(id));
  }
  if (!d.decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  std::string out;
  for (const std::string& s : d.decoder->chain(tokens)) out += s;
  return out;
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return decode({id}, false);
}

int32_t Tokenizer::extra_bos() const { return impl_->extra_bos; }

std::unique_ptr<Tokenizer> Tokenizer::from_model_folder(const std::string& folder) {
  auto t = from_file(folder + "/tokenizer.json");
  std::ifstream in(folder + "/tokenizer_config.json", std::ios::binary);
  if (!in) return t;
  std::stringstream text;
  text << in.rdbuf();
  const json c = json::parse(text.str(), nullptr, false);
  if (!c.is_object() || !c.value("add_bos_token", false) || !c.contains("bos_token")) return t;
  // bos_token: a string, or an added-token object {"content": ...}.
  std::string bos;
  if (c["bos_token"].is_string()) bos = c["bos_token"].get<std::string>();
  else if (c["bos_token"].is_object()) bos = c["bos_token"].value("content", std::string());
  if (bos.empty()) return t;
  int32_t id = -1;
  for (const AddedToken& a : t->impl_->added)
    if (a.content == bos) id = a.id;
  if (id < 0)
    if (const auto known = t->impl_->model->id(bos)) id = *known;
  if (id < 0)
    throw TokenizerError(folder + "/tokenizer_config.json: bos_token \"" + bos +
                         "\" is not a token of tokenizer.json");
  // Only where the template does not already put it first.
  const auto& prefix = t->impl_->prefix_ids;
  if (prefix.empty() || prefix.front() != id) t->impl_->extra_bos = id;
  return t;
}

int64_t Tokenizer::vocab_size() const {
  int64_t n = impl_->model->size();
  for (const AddedToken& a : impl_->added) n = std::max<int64_t>(n, int64_t(a.id) + 1);
  return n;
}

}  // namespace unipool
