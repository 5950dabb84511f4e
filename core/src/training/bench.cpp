#include "unipool/bench.h"

#include <chrono>
#include <fstream>
#include <string>

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
