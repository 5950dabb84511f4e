// `unipool bench`: training and inference throughput, statistics cost and MFU, after warm-up.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "commands.h"
#include "unipool/bench.h"
#include "unipool/engine.h"

namespace unipool::cli {

namespace {

struct BenchArgs {
  std::string preset = "default", config, compare, checkpoint;
  int64_t tokens = 512;
  int passes = 3;
  int batch = 16, seq = 128, steps = 20, threads = 1, warmup = 3;
  bool json = false, locked = false;
  std::vector<int> threads_scan;
  ComputeOptions compute;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// The engine a bench times: the preset (or config file), the batch shape and compute flags;
// `locked`: UniPool-lock's locked step (partition from a validation now, locked from here).
std::unique_ptr<Engine> bench_engine(const BenchArgs& a, const std::string& preset_name,
                                     const std::string& config, bool locked) {
  Preset p = preset(preset_name);
  if (!config.empty()) p.model = config_from_json(read_file_bytes(config));
  p.train.batch = a.batch;
  p.train.seq = a.seq;
  p.train.total_steps = 2 * a.warmup + 4 * a.steps;
  DataSpec data;
  data.builtin_bytes = 1 << 20;
  auto engine = std::make_unique<Engine>(p.model, p.train, data, a.threads);
  apply_compute_flags(*engine, a.compute);
  if (locked) {
    if (!engine->config().lock.enabled)
      throw CLI::ValidationError("--locked needs a UniPool-lock preset or config");
    if (engine->lock_status().owned.empty()) engine->apply(FreezeNow{});
    if (engine->lock_status().phase != LockPhase::Locked) engine->apply(LockNow{});
  }
  return engine;
}

// One engine's step against another's in the same process, statistics on: the steps
// alternate A B B A, so a busy neighbour or a clock change hits both alike, and the figure is
// the median over pairs of (A / B - 1), which separate runs on a shared machine (+-2% from one
// process to the next) cannot resolve.
struct Paired {
  double ms_this = 0, ms_other = 0, ratio_pct = 0;
};

Paired paired_steps(Engine& mine, Engine& other, int steps) {
  std::vector<double> a, b, ratio;
  for (Engine* e : {&mine, &other}) e->set_collect_stats(true);
  for (int i = 0; i < steps; ++i) {
    double t[2];
    for (int j = 0; j < 2; ++j) {
      const int which = (i % 2 == 0) ? j : 1 - j;  // A B, then B A
      const auto start = std::chrono::steady_clock::now();
      (which == 0 ? mine : other).train_step();
      t[which] = seconds_since(start);
    }
    a.push_back(t[0]);
    b.push_back(t[1]);
    ratio.push_back(100.0 * (t[0] / t[1] - 1.0));
  }
  return {1000.0 * median(a), 1000.0 * median(b), median(ratio)};
}

// Training steps at each thread count of --threads-scan, in one process on one engine: every
// round times one step per count (after an untimed one at that count), the order reversed
// from round to round (1 2 2 1 ...), so
// a busy neighbour or a clock change touches every count alike. The speed-up is the median
// over rounds of (one-thread step time / this count's), which also cancels slow drifts.
int run_threads_scan(const BenchArgs& a) {
  std::vector<int> counts = a.threads_scan;
  if (std::find(counts.begin(), counts.end(), 1) == counts.end()) counts.insert(counts.begin(), 1);
  const std::unique_ptr<Engine> engine = bench_engine(a, a.preset, a.config, a.locked);
  engine->set_collect_stats(true);  // what the studio runs
  for (int t : counts) {
    set_compute_threads(t);
    for (int i = 0; i < a.warmup; ++i) engine->train_step();
  }
  std::map<int, std::vector<double>> times, ratios;
  for (int round = 0; round < a.steps; ++round) {
    std::map<int, double> t_round;
    for (size_t j = 0; j < counts.size(); ++j) {
      const int t = counts[round % 2 == 0 ? j : counts.size() - 1 - j];
      set_compute_threads(t);
      // One untimed step after each switch: the first steps at a new count wake the pool's
      // threads and warm their caches (~20 ms here), which a run at that count pays once.
      engine->train_step();
      const auto start = std::chrono::steady_clock::now();
      engine->train_step();
      t_round[t] = seconds_since(start);
      times[t].push_back(t_round[t]);
    }
    for (int t : counts) ratios[t].push_back(t_round[1] / t_round[t]);
  }
  // The ceiling: independent GEMMs of the experts' shape (a pool expert's share of the
  // step's rows x d_model x expert_hidden), one stream per thread, one BLAS thread each.
  set_compute_threads(1);
  const ModelConfig& c = engine->config();
  const int rows_per_expert =
      std::max(1, int(int64_t(a.batch) * a.seq * c.top_k / std::max(1, c.experts_per_group)));
  std::map<int, double> gemm;
  for (int t : counts)
    gemm[t] = measure_parallel_gemm_gflops(rows_per_expert, int(c.d_model), int(c.expert_hidden), t);
  set_compute_threads(a.threads);
  const double tokens = double(a.batch) * a.seq;
  nlohmann::json rows = nlohmann::json::array();
  for (int t : counts)
    rows.push_back({{"threads", t},
                    {"train_tokens_per_s", tokens / median(times[t])},
                    {"ms_per_step", 1000.0 * median(times[t])},
                    {"speedup_over_1", median(ratios[t])},
                    {"expert_gemm_gflops", gemm[t]},
                    {"expert_gemm_scaling", gemm[t] / gemm[1]}});
  if (a.json) {
    std::cout << nlohmann::json{{"preset", a.config.empty() ? a.preset : a.config},
                                {"batch", a.batch},
                                {"seq", a.seq},
                                {"rounds", a.steps},
                                {"compute", engine->compute_description()},
                                {"expert_gemm_shape", {rows_per_expert, c.d_model, c.expert_hidden}},
                                {"threads_scan", rows}}
                     .dump()
              << "\n";
    return 0;
  }
  std::printf("threads scan: %s, batch %d x seq %d, %d alternating rounds in one process\n",
              (a.config.empty() ? a.preset : a.config).c_str(), a.batch, a.seq, a.steps);
  std::printf("  threads  tokens/s  ms/step  speed-up  ceiling: independent %dx%dx%d GEMMs\n",
              rows_per_expert, int(c.d_model), int(c.expert_hidden));
  for (const auto& r : rows)
    std::printf("  %7d  %8.0f  %7.1f  %7.2fx  %5.0f GFLOP/s (%.2fx)\n", r["threads"].get<int>(),
                r["train_tokens_per_s"].get<double>(), r["ms_per_step"].get<double>(),
                r["speedup_over_1"].get<double>(), r["expert_gemm_gflops"].get<double>(),
                r["expert_gemm_scaling"].get<double>());
  std::printf("  speed-up: median over rounds of (1-thread step time / this count's); ceiling:\n"
              "  the machine's own scaling for GEMMs of the experts' shape, no serial part\n");
  return 0;
}

int run_bench(const BenchArgs& a) {
  const std::unique_ptr<Engine> engine_ptr = bench_engine(a, a.preset, a.config, a.locked);
  Engine& engine = *engine_ptr;
  const double tokens = double(a.batch) * a.seq;

  // Steps alternate between statistics on (what the studio runs) and off, so both see the
  // same phase of training; medians keep a busy neighbour's spikes out of the figures.
  for (int i = 0; i < a.warmup; ++i) engine.train_step();
  std::vector<double> on, off, cpu_on, stats_share;
  for (int i = 0; i < 2 * a.steps; ++i) {
    const bool stats = i % 2 == 0;
    engine.set_collect_stats(stats);
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    const StepMetrics m = engine.train_step();
    (stats ? on : off).push_back(seconds_since(start));
    if (stats) stats_share.push_back(m.stats_seconds / m.seconds);
    if (stats) cpu_on.push_back(double(std::clock() - cpu_start) / CLOCKS_PER_SEC);
  }
  const double with_stats = median(on);
  const double without_stats = median(off);

  // Inference: forward passes over the same number of tokens, no gradients.
  std::string text(size_t(a.batch) * size_t(a.seq) + 1, ' ');
  for (size_t i = 0; i < text.size(); ++i) text[i] = char('a' + (i * 7 + i / 13) % 26);
  engine.evaluate(text, a.seq);  // warm-up
  const auto start = std::chrono::steady_clock::now();
  int infer_reps = 0;
  while (infer_reps < 3 || seconds_since(start) < 1.0) {
    engine.evaluate(text, a.seq);
    ++infer_reps;
  }
  const double infer_s = seconds_since(start) / infer_reps;

  const double train_tps = tokens / with_stats;
  const double flops = training_flops_per_token(engine.config(), a.seq);
  const double gemm = measure_gemm_gflops();
  const double mfu = train_tps * flops / (gemm * 1e9);
  const double overhead = 100.0 * (with_stats - without_stats) / without_stats;
  nlohmann::json j = {{"preset", a.config.empty() ? a.preset : a.config},
                      {"phase", lock_phase_name(engine.lock_status().phase)},
                      {"batch", a.batch},
                      {"seq", a.seq},
                      {"threads", a.threads},
                      {"compute", engine.compute_description()},
                      {"steps", a.steps},
                      {"train_tokens_per_s", train_tps},
                      {"train_tokens_per_s_no_stats", tokens / without_stats},
                      {"ms_per_step", 1000.0 * with_stats},
                      {"cpu_ms_per_step", 1000.0 * median(cpu_on)},
                      {"stats_overhead_pct", overhead},
                      {"stats_time_pct", 100.0 * median(stats_share)},
                      {"infer_tokens_per_s", tokens / infer_s},
                      {"train_gflop_per_token", flops / 1e9},
                      {"gemm_gflops", gemm},
                      {"mfu", mfu},
                      {"peak_rss_mib", peak_rss_mib()}};
  Paired paired;
  if (!a.compare.empty()) {
    const std::unique_ptr<Engine> other = bench_engine(a, a.compare, "", false);
    for (int i = 0; i < a.warmup; ++i) other->train_step();
    paired = paired_steps(engine, *other, a.steps);
    j["compare"] = {{"preset", a.compare},
                    {"pairs", a.steps},
                    {"ms_per_step", paired.ms_this},
                    {"other_ms_per_step", paired.ms_other},
                    {"step_time_over_other_pct", paired.ratio_pct}};
  }
  if (a.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("training:   %8.0f tokens/s  (%.1f ms/step, batch %d x seq %d, %d thread%s)\n",
              train_tps, 1000.0 * with_stats, a.batch, a.seq, a.threads, a.threads > 1 ? "s" : "");
  std::printf("            %.1f ms of CPU time per step (all threads)\n", 1000.0 * median(cpu_on));
  std::printf(
      "statistics: %.2f%% of a step timed inside it; %+.1f%% step-time difference on/off "
      "(%.0f tokens/s without)\n",
      100.0 * median(stats_share), overhead, tokens / without_stats);
  std::printf("inference:  %8.0f tokens/s\n", tokens / infer_s);
  std::printf("MFU:        %.1f%% of the %.0f GFLOP/s GEMM rate (%.2f MFLOP per training token)\n",
              100.0 * mfu, gemm, flops / 1e6);
  std::printf("memory:     %.0f MiB peak resident\n", peak_rss_mib());
  if (!a.compare.empty())
    std::printf(
        "against %s: %+.1f%% step time (median over %d alternating pairs in this process; "
        "%.1f ms/step here, %.1f there)\n",
        a.compare.c_str(), paired.ratio_pct, a.steps, paired.ms_this, paired.ms_other);
  return 0;
}

}  // namespace

Runner register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure training and inference tokens/s");
  auto* p = cmd->add_option("--preset", a->preset, "Preset")->check(CLI::IsMember(preset_names()));
  cmd->add_option("--config", a->config, "Model config JSON")
      ->check(CLI::ExistingFile)
      ->excludes(p);
  cmd->add_option("--batch", a->batch, "Sequences per step")->check(CLI::Range(1, 65536));
  cmd->add_option("--seq", a->seq, "Bytes per sequence")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--steps", a->steps, "Timed steps with statistics (and as many without)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", a->warmup, "Untimed steps first")->check(CLI::Range(0, 100000));
  cmd->add_option("--threads", a->threads, "CPU threads")->check(CLI::Range(1, 256));
  add_compute_flags(cmd, &a->compute);
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->add_option("--compare", a->compare,
                  "Also time this preset's step against yours, alternating in one process "
                  "(e.g. --preset unipool-lock --locked --compare vanilla)")
      ->check(CLI::IsMember(preset_names()));
  cmd->add_option("--threads-scan", a->threads_scan,
                  "Training tokens/s at each of these thread counts (e.g. 1,2,4), alternating "
                  "in one process, with the median speed-up over 1 thread")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--locked", a->locked,
                "UniPool-lock: freeze and lock before timing (the locked model's step)");
  cmd->add_option("--checkpoint", a->checkpoint,
                  "A downloaded model's folder: time its prefill instead (--tokens, --passes; "
                  "--threads defaults to every core)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--tokens", a->tokens, "With --checkpoint: tokens in the prefill window")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--passes", a->passes, "With --checkpoint: passes (the first is cold)")
      ->check(CLI::Range(1, 100));
  return [a, cmd] {
    if (!a->checkpoint.empty())
      return run_downloaded_bench(a->checkpoint, a->tokens,
                                  cmd->count("--threads") ? a->threads : default_threads(),
                                  a->passes, a->json);
    if (!a->threads_scan.empty()) return run_threads_scan(*a);
    return run_bench(*a);
  };
}

}  // namespace unipool::cli
