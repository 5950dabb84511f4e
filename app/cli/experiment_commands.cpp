// `unipool probe` and `unipool sweep`: the paper's two questions from the command line, on the
// same code as the studio's Experiments tab (unipool/experiments.h).
#include <atomic>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "unipool/engine.h"
#include "unipool/experiments.h"

namespace unipool::cli {

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop = true; }

template <class T>
std::vector<T> parse_list(const std::string& text, const char* what) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 1) throw std::invalid_argument(item);
      out.push_back(T(v));
    } catch (const std::exception&) {
      throw CLI::ValidationError(std::string(what) + ": '" + item + "' is not a count >= 1");
    }
  }
  return out;
}

struct ProbeArgs {
  std::vector<std::string> checkpoints;
  std::string text, token_ids;
  int seq = 128, seeds = 3, threads = 0;  // 0: one for our models, every core for downloaded
  int64_t windows = -1, max_tokens = -1;
  bool json = false;
};

ProbeResult probe_one(const ProbeArgs& a, const std::string& path, const std::string& file_text,
                      const Progress& progress) {
  if (is_downloaded_model(path)) {
    DownloadedProbeArgs d;
    d.text = a.text;
    d.token_ids = a.token_ids;
    d.seq = a.seq;
    d.seeds = a.seeds;
    d.threads = a.threads > 0 ? a.threads : default_threads();
    d.windows = a.windows;
    d.max_tokens = a.max_tokens;
    nlohmann::json j;
    run_downloaded_probe(path, d, progress, &j);
    return probe_from_json(j.dump());
  }
  if (!a.token_ids.empty())
    throw CLI::ValidationError(path + " is one of our byte-level models: --token-ids is for "
                                      "downloaded models");
  auto engine = Engine::open(path, false,
                             a.text.empty() ? std::optional<DataSpec>(DataSpec{}) : std::nullopt,
                             std::max(1, a.threads));
  const std::string& text = a.text.empty() ? engine->validation_text() : file_text;
  return run_probe(*engine, path, text, a.seq, a.seeds, a.windows, progress);
}

int run_probe_command(const ProbeArgs& a) {
  // Without --text each model is probed on the built-in corpus's validation text, as the
  // studio's Experiments tab does.
  const std::string file_text = a.text.empty() ? std::string() : read_file_bytes(a.text);
  nlohmann::json all = nlohmann::json::array();
  g_stop = false;
  auto previous = std::signal(SIGINT, on_sigint);
  for (const std::string& path : a.checkpoints) {
    const ProbeResult r = probe_one(a, path, file_text, [&](int64_t done, int64_t total) {
          if (!a.json)
            std::fprintf(stderr, "\r%s: %lld/%lld evaluations", path.c_str(), (long long)done,
                         (long long)total);
          return !g_stop.load();
        });
    if (!a.json) std::fprintf(stderr, "\n");
    if (a.json) {
      all.push_back(nlohmann::json::parse(to_json(r)));
      continue;
    }
    std::printf("%s (%lld targets, %d seeds)\n", path.c_str(), (long long)r.n_targets, r.seeds);
    std::printf("  %-9s %10s %10s %11s %10s\n", "random", "loss", "d_loss", "accuracy", "d_acc");
    for (const ProbeRow& row : r.rows) {
      double loss = 0, acc = 0;
      for (double v : row.loss) loss += v / double(row.loss.size());
      for (double v : row.accuracy) acc += v / double(row.accuracy.size());
      std::printf("  %-9s %10.4f %+7.4f+-%.4f %8.4f %+7.4f+-%.4f\n", row.name.c_str(), loss,
                  row.d_loss_mean, row.d_loss_std, acc, row.d_accuracy_mean, row.d_accuracy_std);
    }
  }
  std::signal(SIGINT, previous);
  if (a.json) std::cout << all.dump() << "\n";
  return 0;
}

// "0,1e-3,0.01" -> coefficients >= 0.
std::vector<double> parse_coefficients(const std::string& text, const char* what) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = -1;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
    }
    if (used == 0 || used != item.size() || !(v >= 0) || !std::isfinite(v))
      throw CLI::ValidationError(std::string(what) + ": '" + item + "' is not a number >= 0");
    out.push_back(v);
  }
  return out;
}

struct SweepArgs {
  std::string preset = "default", pool_sizes, aux_coefs, out, data;
  int seeds = 1, steps = 1000, batch = 16, seq = 128, parallel = 1;
  bool no_vanilla = false, lock = false, lock_random = false, json = false;
  double router_init_std = 0.0, router_weight_decay = -1.0;
};

int run_sweep_command(const SweepArgs& a) {
  SweepSpec spec;
  spec.preset = a.preset;
  if (!a.pool_sizes.empty()) spec.pool_sizes = parse_list<int>(a.pool_sizes, "--pool-sizes");
  if (!a.aux_coefs.empty()) spec.aux_coefs = parse_coefficients(a.aux_coefs, "--aux-coefs");
  spec.seeds.clear();
  for (int s = 1; s <= a.seeds; ++s) spec.seeds.push_back(uint64_t(s));
  spec.vanilla = !a.no_vanilla;
  spec.lock = a.lock;
  spec.lock_random = a.lock_random;
  spec.router_init_std = a.router_init_std;
  spec.router_weight_decay = a.router_weight_decay;
  spec.steps = a.steps;
  spec.batch = a.batch;
  spec.seq = a.seq;
  spec.data.path = a.data;
  set_compute_threads(1);  // each run trains on its own thread
  SweepState state = open_sweep(a.out, spec);
  int todo = 0;
  for (const SweepRun& r : state.runs) todo += r.done ? 0 : 1;
  if (!a.json)
    std::fprintf(stderr, "sweep %s: %zu runs, %d to train (%d at a time)\n", a.out.c_str(),
                 state.runs.size(), todo, a.parallel);
  g_stop = false;
  auto previous = std::signal(SIGINT, on_sigint);
  const auto start = std::chrono::steady_clock::now();
  int64_t steps_done = 0;
  const int64_t steps_total = int64_t(todo) * spec.steps;
  int status = 0;
  try {
    run_sweep(state, a.parallel, [&](const SweepEvent& e) {
      if (!e.finished) ++steps_done;
      if (!a.json && (e.finished || e.step % 50 == 0)) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double left =
            steps_done > 0 ? elapsed / double(steps_done) * double(steps_total - steps_done) : 0;
        std::fprintf(stderr, "\r%-14s step %5lld/%lld   sweep %5.1f%%   %4.0f min left ",
                     state.runs[size_t(e.run)].name.c_str(), (long long)e.step, (long long)e.steps,
                     100.0 * double(steps_done) / double(std::max<int64_t>(1, steps_total)),
                     left / 60);
        if (e.finished) std::fprintf(stderr, "\n");
      }
      return !g_stop.load();
    });
  } catch (const Cancelled& e) {
    std::fprintf(stderr, "\n%s\n", e.what());
    status = 130;
  }
  std::signal(SIGINT, previous);
  nlohmann::json runs = nlohmann::json::array();
  for (const SweepRun& r : state.runs) {
    runs.push_back({{"name", r.name},
                    {"kind", r.kind},
                    {"experts_per_group", r.experts_per_group},
                    {"seed", r.seed},
                    {"budget", r.budget},
                    {"done", r.done},
                    {"valid_loss", r.valid_loss},
                    {"tokens_per_s", r.tokens_per_s},
                    {"aux_coef", r.aux_coef},
                    {"zero_gate", r.zero_gate},
                    {"zero_gate_all", r.zero_gate_all}});
  }
  if (a.json) {
    std::cout << nlohmann::json{{"dir", a.out}, {"runs", runs}}.dump() << "\n";
  } else {
    // Zero-gate: the share of validation tokens with no expert (all gates 0, SPEC 9), over all
    // layers and in the worst layer.
    std::printf("%-22s %8s %5s %11s %10s %10s %10s\n", "run", "budget", "done", "valid CE",
                "tokens/s", "zero-gate", "worst layer");
    for (const SweepRun& r : state.runs) {
      double worst = 0;
      for (double z : r.zero_gate) worst = std::max(worst, z);
      std::printf("%-22s %7.1f%% %5s %11.4f %10.0f %9.1f%% %9.1f%%\n", r.name.c_str(),
                  100 * r.budget, r.done ? "yes" : "no", r.valid_loss, r.tokens_per_s,
                  100 * r.zero_gate_all, 100 * worst);
    }
  }
  return status;
}

}  // namespace

Runner register_probe(CLI::App& app) {
  auto a = std::make_shared<ProbeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "probe", "Random-routing probe: loss and accuracy change with random routing per layer");
  cmd->add_option("--checkpoint", a->checkpoints,
                  "Model .safetensors or a downloaded model's folder (repeat for a second model)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--text", a->text, "Text file to evaluate (default: built-in validation text)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--token-ids", a->token_ids, "Downloaded models: a file of token ids")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-tokens", a->max_tokens, "Downloaded models: at most this many tokens")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seq", a->seq, "Window length S")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--seeds", a->seeds, "Random draws per condition")->check(CLI::Range(1, 100));
  cmd->add_option("--windows", a->windows, "At most this many windows (default: all)");
  cmd->add_option("--threads", a->threads,
                  "CPU threads (default: 1 for our models, every core for downloaded ones)")
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--json", a->json, "Print JSON");
  return [a] { return run_probe_command(*a); };
}

Runner register_sweep(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "Pool-size sweep: UniPool at several pool sizes against vanilla (resumable)");
  cmd->add_option("--preset", a->preset, "The UniPool preset whose pool size varies")
      ->check(CLI::IsMember(preset_names()));
  cmd->add_option(
      "--pool-sizes", a->pool_sizes,
      "Experts per pool, e.g. 12,20,24,32,48 (default: 25/41.7/50/66.7/100% of vanilla)");
  cmd->add_option("--seeds", a->seeds, "Seeds per configuration (1-5)")->check(CLI::Range(1, 5));
  cmd->add_option("--steps", a->steps, "Steps of every run")->check(CLI::Range(1, 10000000));
  cmd->add_option("--batch", a->batch, "Sequences per step")->check(CLI::Range(1, 65536));
  cmd->add_option("--seq", a->seq, "Bytes per sequence")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--data", a->data, "Training text (default: the built-in corpus)");
  cmd->add_option("--out", a->out, "The sweep's folder (reopen it to resume)")->required();
  cmd->add_option("--parallel", a->parallel, "Runs trained at once")->check(CLI::Range(1, 64));
  cmd->add_option("--aux-coefs", a->aux_coefs,
                  "A grid with --pool-sizes: each UniPool run at each aux coefficient, e.g. "
                  "0,1e-3,1e-2,1e-1 (default: the preset's)");
  cmd->add_flag("--no-vanilla", a->no_vanilla, "Leave out the vanilla baseline");
  cmd->add_flag("--lock", a->lock, "Add a UniPool-lock run (one per aux coefficient)");
  cmd->add_flag("--lock-random", a->lock_random,
                "Add lock's control: a random partition locked from step 0");
  cmd->add_option("--router-init-std", a->router_init_std,
                  "Every run's routers from N(0, X) (the reference code: 0.01)")
      ->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--router-weight-decay", a->router_weight_decay,
                  "Every run's router weight decay (the reference code: 0.01)")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_flag("--json", a->json, "Print a JSON summary");
  return [a] { return run_sweep_command(*a); };
}

}  // namespace unipool::cli
