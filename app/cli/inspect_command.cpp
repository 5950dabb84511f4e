// `unipool inspect`: our own checkpoints (config, sizes, tensors), and any MoE checkpoint, ours
// or downloaded (Mixtral, OLMoE, Qwen-MoE, DeepSeek, GPT-OSS safetensors, one file or a sharded
// folder): its architecture, the UniPool view of its expert budget and the cross-layer expert
// redundancy (unipool/redundancy.h).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "unipool/engine.h"
#include "unipool/redundancy.h"

namespace unipool::cli {

namespace {

struct InspectArgs {
  std::string checkpoint;
  bool json = false;
  bool redundancy = false, architecture_only = false, exact = false;
  int rows = 32;
};

int run_own_inspect(const InspectArgs& a) {
  const CheckpointInfo info = inspect_checkpoint(a.checkpoint);
  const ParamCounts p = count_parameters(info.config);
  if (a.json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : info.tensors)
      tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}});
    nlohmann::json j = {{"config", nlohmann::json::parse(to_json(info.config))},
                        {"step", info.step},
                        {"has_train_state", info.has_train_state},
                        {"params_total", p.total},
                        {"params_active_per_token", p.active_per_token},
                        {"expert_budget", p.expert},
                        {"vanilla_expert_budget", p.vanilla_budget},
                        {"budget_ratio", p.budget_ratio},
                        {"tensors", tensors}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  const ModelConfig& c = info.config;
  std::printf("%s: step %lld%s\n", a.checkpoint.c_str(), (long long)info.step,
              info.has_train_state ? " (training state present)" : "");
  std::printf("config: %s\n", to_json(c).c_str());
  std::printf(
      "layout: %d layers, %d pool(s) of %d experts (layers_per_group %d), top-%d, %s router\n",
      c.n_layers, c.n_groups(), c.experts_per_group, c.layers_per_group, c.top_k, c.router.c_str());
  std::printf("parameters: %lld total, %lld active per token\n", (long long)p.total,
              (long long)p.active_per_token);
  std::printf("expert budget: %lld = %.1f%% of the matching vanilla MoE (8 experts x %d layers)\n",
              (long long)p.expert, 100.0 * p.budget_ratio, c.n_layers);
  std::printf("\n%-34s %-5s %s\n", "tensor", "dtype", "shape");
  for (const auto& t : info.tensors) {
    std::string shape;
    for (size_t i = 0; i < t.shape.size(); ++i)
      shape += (i ? " x " : "") + std::to_string(t.shape[i]);
    std::printf("%-34s %-5s %s\n", t.name.c_str(), t.dtype.c_str(), shape.c_str());
  }
  return 0;
}

// Whether `path` is one of our own model files (their metadata says format "unipool").
bool is_own_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return false;
  try {
    const MappedSafetensors f(path);
    const auto it = f.metadata().find("format");
    return it != f.metadata().end() && it->second == "unipool";
  } catch (const FormatError&) {
    return false;
  }
}

std::string billions(int64_t n) {
  char buf[32];
  if (n >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.1f B", double(n) / 1e9);
  else if (n >= 1000000)
    std::snprintf(buf, sizeof buf, "%.1f M", double(n) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

void print_architecture(const MoeCheckpoint& ck) {
  const MoeArchitecture& a = ck.architecture();
  std::printf("%s: %s\n", ck.path().c_str(), a.family.c_str());
  std::printf("files: %zu (%.2f GB)\n", ck.files().size(), double(ck.total_bytes()) / 1e9);
  std::printf("layers: %d (%d MoE, %zu dense), %d routed experts per %s", a.n_layers, a.moe_layers,
              a.dense_layers.size(), a.experts_per_bank, a.pool_shared ? "pool" : "layer");
  if (a.shared_per_layer > 0) std::printf(" + %d shared", a.shared_per_layer);
  if (a.top_k > 0) std::printf(", top-%d", a.top_k);
  std::printf("; hidden %lld, expert hidden %lld\n", static_cast<long long>(a.hidden),
              static_cast<long long>(a.expert_hidden));
  std::printf("parameters: %s total, %s in routed experts", billions(a.total_params).c_str(),
              billions(a.routed_params).c_str());
  if (a.active_params > 0) std::printf(", %s active per token", billions(a.active_params).c_str());
  std::printf(" (");
  bool first = true;
  for (const auto& [dtype, n] : a.dtype_params) {
    std::printf("%s%s %s", first ? "" : ", ", dtype.c_str(), billions(n).c_str());
    first = false;
  }
  std::printf(")\n");
  const PoolView v = pool_view(a);
  std::printf(
      "UniPool view: the routed experts as one shared pool of %lld; the paper's reduced pools "
      "(41.6-66.7%% of the budget) hold %lld-%lld experts and save %s-%s parameters\n",
      static_cast<long long>(v.pool_experts), static_cast<long long>(v.reduced_low),
      static_cast<long long>(v.reduced_high), billions(v.params_saved_high).c_str(),
      billions(v.params_saved_low).c_str());
  for (const std::string& n : a.notes) std::printf("note: %s\n", n.c_str());
}

void print_redundancy(const RedundancyReport& r) {
  std::printf("\nsimilarity: %zu experts, cosine of the flattened weights ",
              r.banks.size() * size_t(r.experts));
  if (r.exact) {
    std::printf("(every row read: exact)\n");
  } else {
    std::printf("from %lld of %lld rows per matrix (%.2f%% of each expert), standard error %.4f\n",
                static_cast<long long>(r.rows_sampled[0]), static_cast<long long>(r.rows_total[0]),
                100.0 * double(r.values_sampled) / double(r.values_total), r.standard_error);
  }
  for (const std::string& n : r.notes) std::printf("note: %s\n", n.c_str());
  const bool cross = r.banks.size() > 1;
  std::printf("most similar %s:\n", cross ? "cross-layer pairs" : "pairs in the pool");
  for (size_t i = 0; i < r.top_pairs.size() && i < 10; ++i) {
    const ExpertPair& p = r.top_pairs[i];
    std::printf("  %s expert %d ~ %s expert %d: %.3f\n", r.labels[size_t(p.bank_a)].c_str(),
                p.expert_a, r.labels[size_t(p.bank_b)].c_str(), p.expert_b, p.cosine);
  }
  if (cross) {
    std::printf("nearest expert in another layer (mean over the layer's experts, and the best):\n");
    for (size_t b = 0; b < r.nearest.size(); ++b) {
      const ExpertPair& p = r.nearest[b].best;
      std::printf("  %-12s %.3f  (expert %d ~ %s expert %d: %.3f)\n", r.labels[b].c_str(),
                  r.nearest[b].mean_best, p.expert_a, r.labels[size_t(p.bank_b)].c_str(),
                  p.expert_b, p.cosine);
    }
  }
  std::printf("mean cosine: within a layer %.3f, across layers %.3f (histograms in --json)\n",
              r.mean_within, r.mean_cross);
  std::printf("read %.1f MB in %.1f s\n", double(r.bytes_read) / 1e6, r.seconds);
}

int run_moe_inspect(const InspectArgs& a) {
  const bool tty = !a.json && ::isatty(2);
  int shown = -1;
  const ProgressFn progress = [&](double done, const std::string& what) {
    const int percent = int(100 * done);
    if (tty && percent != shown) {
      std::fprintf(stderr, "\r%3d%% %-60.60s", percent, what.c_str());
      shown = percent;
    }
    return true;
  };
  const auto checkpoint = MoeCheckpoint::open(a.checkpoint, progress);
  std::unique_ptr<RedundancyReport> report;
  if (!a.architecture_only) {
    RedundancyOptions o;
    o.rows = a.exact ? 0 : a.rows;
    report = std::make_unique<RedundancyReport>(analyse_redundancy(*checkpoint, o, progress));
  }
  if (tty) std::fprintf(stderr, "\r%-66s\r", "");
  if (a.json) {
    std::cout << redundancy_json(*checkpoint, report.get()) << "\n";
    return 0;
  }
  print_architecture(*checkpoint);
  if (report) print_redundancy(*report);
  return 0;
}

int run_inspect(const InspectArgs& a) {
  if (is_own_file(a.checkpoint) && !a.redundancy) return run_own_inspect(a);
  try {
    return run_moe_inspect(a);
  } catch (const MoeLayoutError& e) {
    std::cerr << "error: " << a.checkpoint << ": " << e.what() << "\n";
  } catch (const FormatError& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace

Runner register_inspect(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Show a checkpoint: ours (config, sizes, tensors), or any MoE checkpoint, ours or "
      "downloaded (a .safetensors file or a sharded folder): architecture and cross-layer expert "
      "similarity");
  cmd->add_option("checkpoint", a->checkpoint,
                  "Model .safetensors, or a folder with model.safetensors.index.json")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->add_flag("--redundancy", a->redundancy,
                "For our own files: the MoE architecture and expert similarity view");
  cmd->add_flag("--architecture-only", a->architecture_only,
                "MoE checkpoints: the architecture alone (no weights read)");
  cmd->add_option("--rows", a->rows, "Rows sampled from each expert matrix (default 32)")
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_flag("--exact", a->exact, "Read every row (exact similarity; slow on big files)");
  return [a] { return run_inspect(*a); };
}

}  // namespace unipool::cli
