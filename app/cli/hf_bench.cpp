// `unipool bench --checkpoint DIR`: prefill speed of a downloaded model (one window of
// --tokens random ids), its share of this machine's float32 GEMM rate, and peak memory.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "unipool/bench.h"
#include "unipool/hf_model.h"
#include "unipool/random.h"

namespace unipool::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int run_downloaded_bench(const std::string& path, int64_t tokens, int threads, int passes,
                         bool json) {
  const auto t_open = std::chrono::steady_clock::now();
  auto model = HfModel::open(path);
  model->set_threads(threads);
  const double open_s = seconds_since(t_open);
  const HfModelInfo& info = model->info();
  std::vector<int32_t> ids(size_t(tokens + 1));
  Rng rng(2605);
  for (int32_t& id : ids) id = int32_t(rng.below(uint64_t(info.vocab)));
  double products = 0;
  const double flops = model->forward_flops(tokens, 1, &products);
  // The first pass reads the weights from the disk or the page cache; later ones are warm.
  std::vector<double> times;
  for (int p = 0; p < passes; ++p) {
    const auto t = std::chrono::steady_clock::now();
    const EvalResult r = model->evaluate(ids, int(tokens), std::nullopt, 1, 0,
                                         [&](double done, const std::string&) {
                                           if (!json) std::fprintf(stderr, "\rpass %d: %3.0f%%", p + 1, 100 * done);
                                           return true;
                                         });
    times.push_back(seconds_since(t));
    if (!json) std::fprintf(stderr, "\rpass %d: %.2f s, loss %.3f\n", p + 1, times.back(), r.loss);
  }
  double best = times[0];
  for (double t : times) best = std::min(best, t);
  const double gemm = measure_gemm_gflops(1024, 1.0);
  const double rate = flops / best / 1e9;
  if (json) {
    std::cout << nlohmann::json{{"family", info.family}, {"tokens", tokens}, {"threads", threads},
                                {"open_s", open_s}, {"pass_s", times},
                                {"tokens_per_s", double(tokens) / best},
                                {"gflop_per_pass", flops / 1e9},
                                {"attention_expert_gflop", products / 1e9},
                                {"gflops", rate}, {"gemm_gflops", gemm},
                                {"gemm_share", rate / gemm}, {"peak_rss_mib", peak_rss_mib()}}
                     .dump()
              << "\n";
    return 0;
  }
  std::printf("%s, %lld-token prefill, %d threads (synthetic weights say nothing of quality)\n",
              info.family.c_str(), (long long)tokens, threads);
  std::printf("open:       %.2f s\n", open_s);
  std::printf("prefill:    %.2f s first pass, %.2f s best warm -> %.1f tokens/s\n", times[0], best,
              double(tokens) / best);
  std::printf("compute:    %.1f GFLOP a pass (%.1f in attention and expert products), %.1f GFLOP/s"
              " = %.0f%% of this machine's %.1f GFLOP/s fp32 GEMM rate\n",
              flops / 1e9, products / 1e9, rate, 100 * rate / gemm, gemm);
  std::printf("memory:     %.0f MiB peak resident\n", peak_rss_mib());
  return 0;
}

}  // namespace unipool::cli
