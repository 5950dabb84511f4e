#include "unipool/bench.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "torch_pch.h"

namespace unipool {

double forward_flops_per_token(const ModelConfig& c, int seq) {
  const double d = c.d_model, hd = c.head_dim(), h = c.expert_hidden;
  const double attn_proj = d * hd * (2.0 * c.n_heads + 2.0 * c.n_kv_heads);  // q, o, k, v
  const double router = double(c.experts_per_group) * d;
  const double experts = double(c.top_k) * 3.0 * d * h;
  const double scores = 2.0 * double(seq) * hd * c.n_heads;  // q.k^T and p.v, full square
  return 2.0 * (c.n_layers * (attn_proj + router + experts + scores) + double(c.vocab_size) * d);
}

double measure_gemm_gflops(int n, double seconds) {
  const at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  at::Tensor out = at::empty({n, n});
  at::mm_out(out, a, b);  // warm-up
  int64_t reps = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < seconds) {
    at::mm_out(out, a, b);
    ++reps;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return 2.0 * double(n) * n * n * double(reps) / elapsed / 1e9;
}

double measure_parallel_gemm_gflops(int m, int k, int n, int threads, double seconds) {
  threads = std::max(1, threads);
  // One independent GEMM stream per thread, each on its own operands: the machine's ceiling
  // for splitting work of this shape, with no serial part and no sharing.
  std::vector<at::Tensor> a, b, out;
  for (int t = 0; t < threads; ++t) {
    a.push_back(at::randn({m, k}));
    b.push_back(at::randn({k, n}));
    out.push_back(at::empty({m, n}));
  }
  std::vector<int64_t> reps(size_t(threads), 0);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      at::mm_out(out[size_t(t)], a[size_t(t)], b[size_t(t)]);  // warm-up
      const auto until = start + std::chrono::duration<double>(seconds);
      while (std::chrono::steady_clock::now() < until) {
        at::mm_out(out[size_t(t)], a[size_t(t)], b[size_t(t)]);
        ++reps[size_t(t)];
      }
    });
  for (std::thread& w : workers) w.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t total = 0;
  for (int64_t r : reps) total += r;
  return 2.0 * double(m) * k * n * double(total) / elapsed / 1e9;
}

double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
    std::getline(status, key);
  }
  return 0.0;
}

}  // namespace unipool
