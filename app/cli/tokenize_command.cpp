// `unipool tokenize`: a text through a downloaded model's tokenizer.json, ids out (the same
// ids as Hugging Face's tokenizers library gives).
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "unipool/tokenizer.h"

namespace unipool::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer, text;
  bool special = false, json = false, pieces = false;
};

int run_tokenize(const TokenizeArgs& a) {
  const auto tokenizer = Tokenizer::from_file(a.tokenizer);
  const std::vector<int32_t> ids = tokenizer->encode(read_file_bytes(a.text), a.special);
  if (a.json) {
    nlohmann::json j = {{"ids", ids}};
    if (a.pieces) {
      std::vector<std::string> pieces;
      for (int32_t id : ids) pieces.push_back(tokenizer->piece(id));
      j["pieces"] = pieces;
      j["decoded"] = tokenizer->decode(ids);
    }
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  if (a.pieces) std::cout << tokenizer->decode(ids) << "\n";
  return 0;
}

}  // namespace

Runner register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Token ids of a text with a tokenizer.json");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json")->required()->check(CLI::ExistingFile);
  cmd->add_option("--text", a->text, "Text file (UTF-8)")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--special", a->special,
                "Add the post-processor's special tokens (BOS, ...); off by default");
  cmd->add_flag("--pieces", a->pieces, "Also each token's text and the decoded text");
  cmd->add_flag("--json", a->json, "Print JSON: {\"ids\": [...]}");
  return [a] { return run_tokenize(*a); };
}

}  // namespace unipool::cli
