// Micro-benchmark of the MoE kernels against their LibTorch references for one MoE layer of
// the paper's smallest scale (d 768, h 3072, one pool of 96 experts, top-1), batch 8 x 1024
// tokens by default. Checks before it times (the block output against the reference), then
// prints one JSON object: milliseconds per call, forward and backward, f32 and bf16.
// Usage: bench_moe_kernels [tokens] [iterations]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "gpu/moe_cuda.h"
#include "model/moe_reference.h"

namespace {

namespace gpu = unipool::gpu;
namespace kern = unipool::kernels;

// Median-free but warm: a few untimed calls, then the mean over `iters` synchronised calls.
double time_ms(const std::function<void()>& fn, int iters) {
  for (int i = 0; i < 3; ++i) fn();
  torch::cuda::synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  torch::cuda::synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
             .count() /
         iters;
}

}  // namespace

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::printf("{\"error\": \"no CUDA device\"}\n");
    return 1;
  }
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 8192;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 20;
  const int64_t d = 768, h = 3072, E = 96, k = 1;
  torch::manual_seed(1);
  const auto opt = at::TensorOptions().device(at::kCUDA);
  std::string json = "{\"tokens\": " + std::to_string(T) + ", \"d\": 768, \"h\": 3072, " +
                     "\"experts\": 96, \"top_k\": 1";
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    const std::string tag = dt == at::kFloat ? "f32" : "bf16";
    const at::Tensor x = at::randn({T, d}, opt).to(dt);
    const at::Tensor router = at::randn({E, d}, opt) * 0.05;
    const at::Tensor scale = at::ones({1}, opt);
    const at::Tensor wg = (at::randn({E, h, d}, opt) * 0.02).to(dt);
    const at::Tensor wu = (at::randn({E, h, d}, opt) * 0.02).to(dt);
    const at::Tensor wd = (at::randn({E, d, h}, opt) * 0.02).to(dt);
    at::Tensor dwg = at::zeros({E, h, d}, opt), dwu = at::zeros({E, h, d}, opt),
               dwd = at::zeros({E, d, h}, opt);
    const at::Tensor logits = at::mm(x.to(at::kFloat), router.t()).contiguous();  // (T, E)
    kern::RouteParams p;
    p.tokens = T;
    p.experts = int(E);
    p.top_k = int(k);
    p.router_c = 4.02f;

    gpu::Route r = gpu::route_forward(logits, scale, p);
    gpu::Permutation perm = gpu::permute(r.local.reshape({-1}), E);
    at::Tensor xs = gpu::gather_rows(x, perm.sorted_slot, k);
    gpu::SwigluForward f = gpu::swiglu_forward(xs, perm.offsets, wg, wu, wd);
    at::Tensor out = gpu::combine_forward(f.y, perm.slot_row, r.gates, T, k);
    const at::Tensor want =
        unipool::moe_ref::moe_block(x, r.local.to(at::kLong), r.gates.to(dt), wg, wu, wd);
    const double err = (out.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
    const double mag = want.to(at::kDouble).abs().max().item<double>();

    const at::Tensor dout = at::randn({T, d}, opt).to(dt);
    const at::Tensor dgates = at::randn({T, k}, opt);
    at::Tensor dscale = at::zeros({1}, opt);
    const double ms_route = time_ms([&] { r = gpu::route_forward(logits, scale, p); }, iters);
    const double ms_route_bwd =
        time_ms([&] { gpu::route_backward(logits, scale, r, dgates, p, dscale); }, iters);
    const double ms_permute =
        time_ms([&] { perm = gpu::permute(r.local.reshape({-1}), E); }, iters);
    const double ms_gather = time_ms([&] { xs = gpu::gather_rows(x, perm.sorted_slot, k); }, iters);
    const double ms_swiglu =
        time_ms([&] { f = gpu::swiglu_forward(xs, perm.offsets, wg, wu, wd); }, iters);
    const double ms_swiglu_bwd = time_ms(
        [&] { gpu::swiglu_backward(f.y, xs, perm.offsets, wg, wu, wd, f, dwg, dwu, dwd); }, iters);
    const double ms_combine =
        time_ms([&] { out = gpu::combine_forward(f.y, perm.slot_row, r.gates, T, k); }, iters);
    const double ms_combine_bwd =
        time_ms([&] { gpu::combine_backward(f.y, perm.sorted_slot, r.gates, dout); }, iters);
    const double ms_ref_experts =
        time_ms([&] { unipool::moe_ref::grouped_swiglu(xs, perm.counts, wg, wu, wd); }, iters);
    // 3 GEMMs of 2 * A * d * h FLOPs forward.
    const double tflops = 6.0 * double(T * k) * d * h / (ms_swiglu * 1e-3) / 1e12;
    char buf[1024];
    std::snprintf(buf, sizeof buf,
                  ", \"%s\": {\"check_max_abs_err\": %.3g, \"check_max_abs_ref\": %.3g, "
                  "\"route_ms\": %.4f, \"route_bwd_ms\": %.4f, \"permute_ms\": %.4f, "
                  "\"gather_ms\": %.4f, \"swiglu_fwd_ms\": %.4f, \"swiglu_bwd_ms\": %.4f, "
                  "\"combine_ms\": %.4f, \"combine_bwd_ms\": %.4f, "
                  "\"reference_experts_fwd_ms\": %.4f, \"swiglu_fwd_tflops\": %.2f}",
                  tag.c_str(), err, mag, ms_route, ms_route_bwd, ms_permute, ms_gather, ms_swiglu,
                  ms_swiglu_bwd, ms_combine, ms_combine_bwd, ms_ref_experts, tflops);
    json += buf;
  }
  json += "}";
  std::printf("%s\n", json.c_str());
  return 0;
}
