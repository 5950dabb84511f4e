// `unipool eval` and `unipool generate`: commands over a saved model (inspect_command.cpp
// has `unipool inspect`).
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "commands.h"
#include "unipool/engine.h"

namespace unipool::cli {

int default_threads() { return std::max(1, int(std::thread::hardware_concurrency())); }

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return s.str();
}

std::vector<bool> parse_layer_list(const std::string& list, int n_layers) {
  std::vector<bool> out(size_t(n_layers), false);
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int layer = -1;
    try {
      layer = std::stoi(item, &used);
    } catch (const std::exception&) {
    }
    if (used == 0 || used != item.size() || layer < 0 || layer >= n_layers) {
      throw CLI::ValidationError("--random-layers: '" + item + "' is not a layer in [0, " +
                                 std::to_string(n_layers - 1) + "]");
    }
    out[size_t(layer)] = true;
  }
  return out;
}

namespace {

nlohmann::json counts_json(const RoutingCounts& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (int l = 0; l < r.n_layers; ++l) {
    nlohmann::json row = nlohmann::json::array();
    for (int i = 0; i < r.experts_per_group; ++i) row.push_back(r.count(l, i));
    rows.push_back(row);
  }
  return rows;
}

struct EvalArgs {
  std::string checkpoint, text, random, token_ids;
  int seq = 128, threads = 0;  // 0: one for our models, every core for downloaded ones
  int64_t max_tokens = -1;
  bool json = false;
  ComputeOptions compute;
};

int run_eval(const EvalArgs& a) {
  if (is_downloaded_model(a.checkpoint)) {
    DownloadedEvalArgs d;
    d.checkpoint = a.checkpoint;
    d.text = a.text;
    d.token_ids = a.token_ids;
    d.random = a.random;
    d.seq = a.seq;
    d.threads = a.threads > 0 ? a.threads : default_threads();
    d.max_tokens = a.max_tokens;
    d.json = a.json;
    return run_downloaded_eval(d);
  }
  if (!a.token_ids.empty() || a.text.empty())
    throw CLI::ValidationError(
        "our own models are byte-level: give --text (--token-ids is for downloaded models)");
  auto engine = Engine::open(a.checkpoint, false, std::nullopt, std::max(1, a.threads));
  apply_compute_flags(*engine, a.compute);
  std::string text = read_file_bytes(a.text);
  if (a.max_tokens >= 0 && int64_t(text.size()) > a.max_tokens) text.resize(size_t(a.max_tokens));
  std::optional<std::vector<bool>> random;
  if (!a.random.empty()) random = parse_layer_list(a.random, engine->config().n_layers);
  if (a.seq > engine->config().max_seq_len) {
    throw CLI::ValidationError("--seq " + std::to_string(a.seq) +
                               " exceeds the model's max_seq_len " +
                               std::to_string(engine->config().max_seq_len));
  }
  const EvalResult r = engine->evaluate(text, a.seq, random);
  const RoutingSummary s = summarize(r.routing);
  if (a.json) {
    nlohmann::json j = {{"loss", r.loss},
                        {"n_targets", r.n_targets},
                        {"counts", counts_json(r.routing)},
                        {"router_c", engine->config().router_c},
                        {"imbalance", s.imbalance},
                        {"load_entropy", s.load_entropy},
                        {"dead_experts", s.dead_experts},
                        {"reuse", s.reuse}};
    // SPEC section 9: zero-gate tokens per layer and the routing diagnostics; for a lock run
    // the partition, each layer's share of routes inside it and the routes outside it.
    const LockStatus lock = engine->lock_status();
    const RoutingDiagnostics d = diagnose(r.routing, lock.owned.empty() ? nullptr : &lock.owned);
    j["zero_gate"] = r.routing.zero_gate;
    j["diagnostics"] = nlohmann::json::parse(to_json(d));
    if (lock.enabled) {
      j["lock"] = {{"phase", lock_phase_name(lock.phase)},
                   {"partition", lock.owned},
                   {"coverage", d.partition_coverage},
                   {"routes_outside", d.routes_outside}};
    }
    std::cout << j.dump() << "\n";
  } else {
    std::printf("loss %.6f (%.4f bits/byte) over %lld targets\n", r.loss, r.loss / std::log(2.0),
                (long long)r.n_targets);
    std::printf("pool imbalance %.3f, load entropy %.3f, dead experts %d, reuse %.3f\n",
                s.imbalance, s.load_entropy, s.dead_experts, s.reuse);
    const LockStatus lock = engine->lock_status();
    if (lock.enabled && !lock.owned.empty()) {
      const RoutingDiagnostics d = diagnose(r.routing, &lock.owned);
      std::printf("UniPool-lock (%s): %lld routes outside the partition\n",
                  lock_phase_name(lock.phase), (long long)d.routes_outside);
    }
  }
  return 0;
}

struct GenerateArgs {
  std::string checkpoint, prompt;
  GenerateOptions options;
  int threads = 1;
};

int run_generate(const GenerateArgs& a) {
  if (!std::isfinite(a.options.temperature)) {
    throw CLI::ValidationError("--temperature must be a finite number");
  }
  auto engine = Engine::open(a.checkpoint, false, std::nullopt, a.threads);
  std::cout << a.prompt << engine->generate(a.prompt, a.options) << std::endl;
  return 0;
}

}  // namespace

Runner register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Evaluate a checkpoint on a text or token ids (SPEC sections 7 and 10)");
  cmd->add_option("--checkpoint", a->checkpoint,
                  "Model .safetensors, or a downloaded model's folder (config.json, safetensors)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--text", a->text, "Text file (a downloaded model tokenizes it with its "
                                     "tokenizer.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--token-ids", a->token_ids,
                  "Downloaded models: whitespace-separated token ids instead of --text")
      ->check(CLI::ExistingFile);
  cmd->add_option("--seq", a->seq, "Window length S")->required()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--random-layers", a->random,
                  "Comma-separated layers to route at random, e.g. 3,4,5");
  cmd->add_option("--max-tokens", a->max_tokens,
                  "Use at most this many tokens (bytes for our byte-level models)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", a->threads,
                  "CPU threads (default: 1 for our models, every core for downloaded ones)")
      ->check(CLI::Range(1, 256));
  add_compute_flags(cmd, &a->compute);
  cmd->add_flag("--json", a->json,
                "Print JSON: loss, n_targets, accuracy, counts (one row per MoE layer), "
                "zero_gate, diagnostics; downloaded models add moe_layers and loss_per_byte");
  return [a] { return run_eval(*a); };
}

Runner register_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with a trained model");
  cmd->add_option("--checkpoint", a->checkpoint, "Model .safetensors")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--prompt", a->prompt, "Text to continue")->required();
  cmd->add_option("--tokens", a->options.tokens, "Bytes to generate")->check(CLI::Range(0, 100000));
  cmd->add_option("--temperature", a->options.temperature, "0 = greedy")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", a->options.top_k, "Sample from the k likeliest bytes (0 = all)")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--seed", a->options.seed, "Sampling seed")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", a->threads, "CPU threads")->check(CLI::Range(1, 256));
  return [a] { return run_generate(*a); };
}

}  // namespace unipool::cli
