// The `unipool` command-line tool: one function per subcommand, registered in main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

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
