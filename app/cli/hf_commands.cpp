// `unipool eval`, `probe` and `routes` on the MoE models people download (SPEC section 10):
// the same commands as for our own models, on token ids (given, or from the model's
// tokenizer.json).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "unipool/experiments.h"
#include "unipool/hf_model.h"
#include "unipool/stats.h"
#include "unipool/tokenizer.h"

namespace unipool::cli {

namespace fs = std::filesystem;

// A file that cannot be read counts as ours: the engine's open then says what is wrong.
bool is_downloaded_model(const std::string& path) { return looks_downloaded(path); }

std::vector<int32_t> read_token_ids(const std::string& path) {
  const std::string text = read_file_bytes(path);
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    const std::string item = text.substr(i, end - i);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
    }
    if (used != item.size() || v < 0 || v > INT32_MAX)
      throw std::runtime_error(path + ": '" + item.substr(0, 40) + "' at byte " +
                               std::to_string(i) + " is not a token id");
    ids.push_back(int32_t(v));
    i = end;
  }
  return ids;
}

namespace {

// The folder of a checkpoint path (the path itself when it is one).
std::string model_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) ? path : fs::path(path).parent_path().string();
}

struct ModelInput {
  std::vector<int32_t> ids;
  int64_t bytes = 0;  // bytes of text the ids came from (0 with --token-ids)
  std::unique_ptr<Tokenizer> tokenizer;
};

ModelInput model_input(const std::string& checkpoint, const std::string& text_path,
                       const std::string& ids_path, int64_t max_tokens) {
  if (text_path.empty() == ids_path.empty())
    throw CLI::ValidationError("give exactly one of --text and --token-ids");
  ModelInput in;
  const std::string folder = model_folder(checkpoint);
  const fs::path tokenizer = fs::path(folder) / "tokenizer.json";
  std::error_code ec;
  if (fs::exists(tokenizer, ec)) in.tokenizer = Tokenizer::from_model_folder(folder);
  if (!ids_path.empty()) {
    in.ids = read_token_ids(ids_path);
  } else {
    if (!in.tokenizer)
      throw std::runtime_error(folder + " has no tokenizer.json: --text needs the model's "
                                        "tokenizer (or give ids with --token-ids)");
    const std::string text = read_file_bytes(text_path);
    // SPEC 10: the post-processor's template once at the start of the text (BOS for
    // Mixtral and DeepSeek, nothing for Qwen).
    in.ids = in.tokenizer->encode(text, true);
    in.bytes = int64_t(text.size());
  }
  if (max_tokens >= 0 && int64_t(in.ids.size()) > max_tokens) {
    if (in.bytes > 0)  // bytes in proportion: loss per byte stays an estimate of the whole
      in.bytes = int64_t(std::llround(double(in.bytes) * double(max_tokens) / double(in.ids.size())));
    in.ids.resize(size_t(max_tokens));
  }
  return in;
}

// --random-layers names the model's layers; the switches go by MoE layer.
std::optional<std::vector<bool>> moe_switches(const HfModel& model, const std::string& list) {
  if (list.empty()) return std::nullopt;
  const HfModelInfo& info = model.info();
  const std::vector<bool> layers = parse_layer_list(list, info.n_layers);
  std::vector<bool> out(info.moe_layers.size(), false);
  for (int l = 0; l < info.n_layers; ++l) {
    if (!layers[size_t(l)]) continue;
    const auto it = std::find(info.moe_layers.begin(), info.moe_layers.end(), l);
    if (it == info.moe_layers.end())
      throw CLI::ValidationError("--random-layers: layer " + std::to_string(l) +
                                 " has no router (a dense layer)");
    out[size_t(it - info.moe_layers.begin())] = true;
  }
  return out;
}

std::unique_ptr<HfModel> open_model(const std::string& path, int threads) {
  auto model = HfModel::open(path);
  model->set_threads(threads);
  return model;
}

nlohmann::json counts_rows(const RoutingCounts& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (int l = 0; l < r.n_layers; ++l) {
    nlohmann::json row = nlohmann::json::array();
    for (int e = 0; e < r.experts_per_group; ++e) row.push_back(r.count(l, e));
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

int run_downloaded_eval(const DownloadedEvalArgs& a) {
  auto model = open_model(a.checkpoint, a.threads);
  const ModelInput in = model_input(a.checkpoint, a.text, a.token_ids, a.max_tokens);
  const auto random = moe_switches(*model, a.random);
  const EvalResult r = model->evaluate(in.ids, a.seq, random);
  const HfModelInfo& info = model->info();
  // Nats per byte: nats per token times the text's tokens per byte, so that models with
  // different tokenizers compare.
  const double per_byte =
      in.bytes > 0 ? r.loss * double(in.ids.size()) / double(in.bytes) : 0.0;
  if (a.json) {
    nlohmann::json j = {{"family", info.family},
                        {"model_type", info.model_type},
                        {"loss", r.loss},
                        {"n_targets", r.n_targets},
                        {"n_tokens", in.ids.size()},
                        {"accuracy", r.accuracy},
                        {"moe_layers", info.moe_layers},
                        {"top_k", info.top_k},
                        {"n_experts", info.n_experts},
                        {"counts", counts_rows(r.routing)},
                        {"zero_gate", r.routing.zero_gate}};
    if (in.bytes > 0) j["loss_per_byte"] = per_byte;
    j["diagnostics"] = nlohmann::json::parse(to_json(diagnose(r.routing, nullptr)));
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("%s: loss %.6f nats/token over %lld targets, next-token accuracy %.4f\n",
              info.family.c_str(), r.loss, (long long)r.n_targets, r.accuracy);
  if (in.bytes > 0) std::printf("loss per byte %.6f nats\n", per_byte);
  return 0;
}

int run_downloaded_probe(const std::string& path, const DownloadedProbeArgs& a,
                         const Progress& progress, nlohmann::json* out) {
  auto model = open_model(path, a.threads);
  const ModelInput in = model_input(path, a.text, a.token_ids, a.max_tokens);
  const ProbeResult r = run_probe(
      [&](const std::vector<bool>& random, uint64_t draw) {
        return model->evaluate(in.ids, a.seq, random, a.windows, draw);
      },
      model->info().moe_layers, path, a.seq, a.seeds, progress);
  *out = nlohmann::json::parse(to_json(r));
  return 0;
}

namespace {

struct RoutesArgs {
  std::string checkpoint, text, token_ids;
  int seq = 512, threads = default_threads();
  int64_t max_tokens = -1;
  bool json = false;
};

int run_routes(const RoutesArgs& a) {
  auto model = open_model(a.checkpoint, a.threads);
  const ModelInput in = model_input(a.checkpoint, a.text, a.token_ids, a.max_tokens);
  const HfRoutes r = model->routes(in.ids, a.seq);
  const HfModelInfo& info = model->info();
  nlohmann::json tokens = nlohmann::json::array();
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    nlohmann::json layers = nlohmann::json::array();
    for (int m = 0; m < r.moe_layers; ++m) {
      const size_t at = size_t((t * r.moe_layers + m) * r.top_k);
      layers.push_back({{"experts", std::vector<int32_t>(r.experts.begin() + long(at),
                                                         r.experts.begin() + long(at) + r.top_k)},
                        {"gates", std::vector<float>(r.gates.begin() + long(at),
                                                     r.gates.begin() + long(at) + r.top_k)}});
    }
    nlohmann::json token = {{"id", r.ids[size_t(t)]}, {"layers", layers}};
    if (in.tokenizer) token["piece"] = in.tokenizer->piece(r.ids[size_t(t)]);
    tokens.push_back(token);
  }
  const nlohmann::json j = {{"family", info.family},   {"moe_layers", info.moe_layers},
                            {"top_k", info.top_k},     {"n_experts", info.n_experts},
                            {"seq", a.seq},            {"tokens", tokens}};
  if (a.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    std::printf("%6lld %8d", (long long)t, r.ids[size_t(t)]);
    for (int m = 0; m < r.moe_layers; ++m) {
      std::printf("  L%d:", info.moe_layers[size_t(m)]);
      for (int j2 = 0; j2 < r.top_k; ++j2)
        std::printf("%s%d", j2 ? "," : "",
                    r.experts[size_t((t * r.moe_layers + m) * r.top_k + j2)]);
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

Runner register_routes(CLI::App& app) {
  auto a = std::make_shared<RoutesArgs>();
  CLI::App* cmd = app.add_subcommand(
      "routes", "Per token and MoE layer: the top-k experts and gates of a downloaded model");
  cmd->add_option("--checkpoint", a->checkpoint, "Model folder (config.json, safetensors)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--text", a->text, "Text file (tokenized with the model's tokenizer.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--token-ids", a->token_ids, "File of whitespace-separated token ids")
      ->check(CLI::ExistingFile);
  cmd->add_option("--seq", a->seq, "Window length")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-tokens", a->max_tokens, "Use at most this many tokens")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", a->threads, "CPU threads (default: every core)")
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--json", a->json, "Print JSON: per token its id, piece and per-layer routes");
  return [a] { return run_routes(*a); };
}

}  // namespace unipool::cli
