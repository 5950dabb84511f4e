// The `unipool` command-line tool: one function per subcommand, registered in main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "unipool/engine.h"

namespace unipool::cli {

// Each register_* adds a subcommand to `app` and returns the function that runs it after
// parsing. A run function returns the process exit code (0 ok, 1 bad file or failed run).
using Runner = std::function<int()>;
Runner register_train(CLI::App& app);
Runner register_eval(CLI::App& app);
Runner register_inspect(CLI::App& app);
Runner register_generate(CLI::App& app);
Runner register_bench(CLI::App& app);
Runner register_probe(CLI::App& app);
Runner register_sweep(CLI::App& app);
Runner register_routes(CLI::App& app);
Runner register_tokenize(CLI::App& app);
Runner register_export(CLI::App& app);

// Every core this machine has (the default --threads of the downloaded-model commands).
int default_threads();

// ---- downloaded MoE models (hf_commands.cpp) ----
// A folder, or a .safetensors file that is not one of our own models.
bool is_downloaded_model(const std::string& path);
// Whitespace-separated token ids; std::runtime_error naming the first bad item.
std::vector<int32_t> read_token_ids(const std::string& path);
struct DownloadedEvalArgs {
  std::string checkpoint, text, token_ids, random;
  int seq = 128, threads = 1;
  int64_t max_tokens = -1;
  bool json = false;
};
int run_downloaded_eval(const DownloadedEvalArgs& args);
struct DownloadedProbeArgs {
  std::string text, token_ids;
  int seq = 128, seeds = 3, threads = 1;
  int64_t windows = -1, max_tokens = -1;
};
// `unipool bench --checkpoint DIR`: `passes` prefills of one window of `tokens` random ids.
int run_downloaded_bench(const std::string& path, int64_t tokens, int threads, int passes,
                         bool json);
// Fills `out` with the probe's JSON (unipool/experiments.h's to_json).
int run_downloaded_probe(const std::string& path, const DownloadedProbeArgs& args,
                         const std::function<bool(int64_t, int64_t)>& progress,
                         nlohmann::json* out);

// --device, --backend, --bf16 (unipool::ComputeOptions), and setting them on an engine (a
// choice this build or machine cannot run is a CLI::ValidationError with the reason).
void add_compute_flags(CLI::App* cmd, ComputeOptions* options);
void apply_compute_flags(Engine& engine, const ComputeOptions& options);

// The process's arguments (main sets them), and `train --nproc N`: N local workers of this
// command with the launcher environment; returns the first failing worker's exit code.
void set_program_arguments(int argc, char** argv);
int launch_local_workers(int nproc, double timeout_s);

// Reads a whole file as bytes; throws std::runtime_error naming the path.
std::string read_file_bytes(const std::string& path);
// "3,4,5" -> (L) switches; throws CLI::ValidationError on a bad list.
std::vector<bool> parse_layer_list(const std::string& list, int n_layers);

}  // namespace unipool::cli
