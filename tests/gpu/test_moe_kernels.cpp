// Every MoE kernel against its LibTorch reference (core/src/model/moe_reference.h) on the GPU,
// forward and backward, fp32 and bf16. A plain executable (the device machine has no Qt):
// prints one line per check and exits nonzero when any fails.
//
// fp32: |kernel - ref| <= abs + |ref| * rel, elementwise. bf16: the kernel's largest error
// against the fp32 reference (same bf16 inputs, computed in fp32) must be at most twice
// PyTorch's own bf16 error against it, plus a small floor.
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "gpu/moe_cuda.h"
#include "model/moe_reference.h"

namespace {

namespace ref = unipool::moe_ref;
namespace gpu = unipool::gpu;
namespace kern = unipool::kernels;

int g_failures = 0;

void report(bool ok, const std::string& what, double err, double bound) {
  std::printf("%s %-48s err %.3g bound %.3g\n", ok ? "PASS" : "FAIL", what.c_str(), err, bound);
  if (!ok) ++g_failures;
}

at::Tensor f64(const at::Tensor& t) { return t.detach().to(at::kDouble); }

// Elementwise abs + |ref| * rel; reports the worst excess.
void expect_close(const std::string& what, const at::Tensor& out, const at::Tensor& want,
                  double abs_tol, double rel) {
  const at::Tensor excess = (f64(out) - f64(want)).abs() - f64(want).abs() * rel - abs_tol;
  const double worst = excess.numel() ? excess.max().item<double>() : 0.0;
  report(worst <= 0.0, what, (f64(out) - f64(want)).abs().max().item<double>(), abs_tol);
}

void expect_equal(const std::string& what, const at::Tensor& out, const at::Tensor& want) {
  const bool ok =
      out.sizes() == want.sizes() && at::equal(out.to(at::kLong).cpu(), want.to(at::kLong).cpu());
  report(ok, what, ok ? 0.0 : 1.0, 0.0);
}

// bf16: kernel error vs fp32 reference <= 2 * torch-bf16 error + floor.
void expect_bf16(const std::string& what, const at::Tensor& kernel, const at::Tensor& torch_bf16,
                 const at::Tensor& ref32) {
  const double k_err = (f64(kernel) - f64(ref32)).abs().max().item<double>();
  const double t_err = (f64(torch_bf16) - f64(ref32)).abs().max().item<double>();
  const double bound = 2 * t_err + 1e-6 * f64(ref32).abs().max().item<double>();
  report(k_err <= bound, what, k_err, bound);
}

at::Tensor randn(at::IntArrayRef shape, double std_dev = 1.0) {
  return at::randn(shape, at::TensorOptions().device(at::kCUDA)) * std_dev;
}

void test_routing(bool norm, int k, bool renorm, bool random, int64_t Mg) {
  const int64_t T = 3000;
  const std::string tag = std::string(norm ? "norm" : "softmax") + " Mg" + std::to_string(Mg) +
                          " k" + std::to_string(k) + (renorm ? " renorm" : "") +
                          (random ? " random" : "");
  at::Tensor z = randn({T, Mg});
  z[5].zero_();  // all-zero scores (NormRouter) / all-equal (softmax): ties to the lowest index
  at::Tensor scale = at::full({1}, 1.3f, z.options());
  kern::RouteParams p;
  p.tokens = T;
  p.experts = int(Mg);
  p.top_k = k;
  p.router = norm ? kern::Router::Norm : kern::Router::Softmax;
  p.router_c = 2.62f;
  p.renormalize = renorm;
  p.random = random;
  p.seed = 0x1234 + uint64_t(k);
  ref::RouteSpec s{k, norm, double(p.router_c), renorm, random, p.seed};

  const gpu::Route r = gpu::route_forward(z, norm ? scale : at::Tensor(), p);
  at::Tensor zr = z.clone().requires_grad_(true), sr = scale.clone().requires_grad_(true);
  const ref::Route want = ref::route(zr, sr, s);
  expect_close("route scores " + tag, r.scores, want.scores, 1e-6, 4e-7);
  // Choices must agree where the scores leave no near-tie at the k-th place.
  const at::Tensor sorted = std::get<0>(want.scores.detach().sort(1, true));
  at::Tensor clear =
      (sorted.select(1, k - 1) - sorted.select(1, std::min<int64_t>(k, Mg - 1))) > 1e-5;
  clear[5] = true;
  expect_equal("route top (clear margins) " + tag, r.top.index({clear}), want.top.index({clear}));
  if (random) expect_equal("route random experts " + tag, r.local, want.local);
  expect_close("route gates " + tag, r.gates.index({clear}), want.gates.detach().index({clear}),
               1e-6, 4e-7);

  const at::Tensor dg = randn({T, k});
  (want.gates * dg).sum().backward();
  at::Tensor grad_scale = at::zeros({1}, z.options());
  const at::Tensor dz = gpu::route_backward(z, scale, r, dg, p, grad_scale);
  expect_close("route grad logits " + tag, dz.index({clear}), zr.grad().index({clear}), 1e-5, 1e-5);
  if (norm && clear.all().item<bool>())
    expect_close("route grad scale " + tag, grad_scale, sr.grad(), 1e-3, 1e-5);
}

void test_permute(int64_t A, int64_t E) {
  at::Tensor expert = at::randint(0, std::max<int64_t>(E - 1, 1), {A},
                                  at::TensorOptions().device(at::kCUDA).dtype(at::kInt));
  const gpu::Permutation p = gpu::permute(expert, E);
  const ref::Permutation want = ref::permute(expert, E);
  const std::string tag = " A" + std::to_string(A) + " E" + std::to_string(E);
  expect_equal("permute counts" + tag, p.counts, want.counts);
  expect_equal("permute offsets" + tag, p.offsets, want.offsets);
  expect_equal("permute sorted_slot (stable)" + tag, p.sorted_slot, want.sorted_slot);
  expect_equal("permute slot_row" + tag, p.slot_row, want.slot_row);
}

struct Problem {
  at::Tensor x, gates, local, wg, wu, wd;  // (T, d), (T, k) f32, (T, k) int32, experts
  int64_t T, k, E;
};

Problem make_problem(int64_t T, int64_t k, int64_t E, int64_t d, int64_t h) {
  Problem pb{randn({T, d}),
             randn({T, k}).abs(),
             {},
             randn({E, h, d}, 0.05),
             randn({E, h, d}, 0.05),
             randn({E, d, h}, 0.05),
             T,
             k,
             E};
  // k distinct experts per token; expert E - 1 gets none (an empty group).
  pb.local =
      at::argsort(at::rand({T, E - 1}, pb.x.options()), /*dim=*/int64_t(1), /*descending=*/false)
          .narrow(1, 0, k)
          .to(at::kInt)
          .contiguous();
  return pb;
}

// Experts forward and backward with fp32 weight-gradient buffers that already hold a previous
// layer's contribution: the kernel must add to it.
void test_swiglu(at::ScalarType dt, const Problem& pb, const std::string& tag) {
  const gpu::Permutation p = gpu::permute(pb.local.reshape({-1}), pb.E);
  const at::Tensor xs32 = ref::gather_rows(pb.x, p.sorted_slot, pb.k).to(dt).to(at::kFloat);
  const at::Tensor xs = xs32.to(dt);
  const at::Tensor w32[3] = {pb.wg.to(dt).to(at::kFloat), pb.wu.to(dt).to(at::kFloat),
                             pb.wd.to(dt).to(at::kFloat)};
  const at::Tensor w[3] = {w32[0].to(dt), w32[1].to(dt), w32[2].to(dt)};
  const gpu::SwigluForward f = gpu::swiglu_forward(xs, p.offsets, w[0], w[1], w[2]);
  const at::Tensor dy = randn(xs.sizes()).to(dt);

  // References: fp32 on the same (rounded) inputs, and PyTorch's own computation in dt.
  auto run_ref = [&](at::ScalarType t, at::Tensor grads[4]) {
    at::Tensor xr = xs32.to(t).requires_grad_(true);
    at::Tensor wr[3];
    for (int i = 0; i < 3; ++i) wr[i] = w32[i].to(t).requires_grad_(true);
    const at::Tensor y = ref::grouped_swiglu(xr, p.counts, wr[0], wr[1], wr[2]);
    (y * dy.to(t)).sum().backward();
    grads[0] = xr.grad();
    for (int i = 0; i < 3; ++i) grads[i + 1] = wr[i].grad();
    return y.detach();
  };
  at::Tensor g32[4], gdt[4];
  const at::Tensor y32 = run_ref(at::kFloat, g32);
  const at::Tensor ydt = run_ref(dt, gdt);

  at::Tensor prev[3], dw[3];
  for (int i = 0; i < 3; ++i) {
    prev[i] = randn(w[i].sizes());
    dw[i] = prev[i].clone();
  }
  const at::Tensor dx =
      gpu::swiglu_backward(dy, xs, p.offsets, w[0], w[1], w[2], f, dw[0], dw[1], dw[2]);
  const char* names[4] = {"dx", "dw_gate (accumulated)", "dw_up (accumulated)",
                          "dw_down (accumulated)"};
  const at::Tensor outs[4] = {dx, dw[0] - prev[0], dw[1] - prev[1], dw[2] - prev[2]};
  if (dt == at::kFloat) {
    const double scale_y = y32.abs().max().item<double>();
    expect_close("swiglu y" + tag, f.y, y32, 1e-5 * scale_y, 1e-5);
    for (int i = 0; i < 4; ++i) {
      const double sc = g32[i].abs().max().item<double>();
      expect_close(std::string("swiglu ") + names[i] + tag, outs[i], g32[i], 1e-5 * sc, 1e-5);
    }
  } else {
    expect_bf16("swiglu y" + tag, f.y, ydt, y32);
    for (int i = 0; i < 4; ++i)
      expect_bf16(std::string("swiglu ") + names[i] + tag, outs[i], gdt[i], g32[i]);
  }
}

void test_combine(at::ScalarType dt, const Problem& pb, const std::string& tag) {
  const gpu::Permutation p = gpu::permute(pb.local.reshape({-1}), pb.E);
  const at::Tensor xdt = pb.x.to(dt);
  report(at::equal(gpu::gather_rows(xdt, p.sorted_slot, pb.k),
                   ref::gather_rows(xdt, p.sorted_slot, pb.k)),
         "gather_rows (exact)" + tag, 0.0, 0.0);
  const at::Tensor y = randn({pb.T * pb.k, pb.x.size(1)}).to(dt);
  at::Tensor yr = y.to(at::kFloat).requires_grad_(true), gr = pb.gates.clone().requires_grad_(true);
  const at::Tensor want = ref::combine(yr, gr, p.slot_row);
  const at::Tensor dout = randn(want.sizes()).to(dt);
  (want * dout.to(at::kFloat)).sum().backward();
  const at::Tensor out = gpu::combine_forward(y, p.slot_row, pb.gates, pb.T, pb.k);
  const auto [dy, dgates] = gpu::combine_backward(y, p.sorted_slot, pb.gates, dout);
  // Sums of k products in fp32, then one rounding to dt.
  const double rel = dt == at::kFloat ? 1e-6 : 8e-3;
  expect_close("combine out" + tag, out, want, 1e-6, rel);
  expect_close("combine grad y" + tag, dy, yr.grad(), 1e-6, rel);
  expect_close("combine grad gates" + tag, dgates, gr.grad(), 1e-4, 1e-5);
}

// permute + gather + experts + combine, fp32, against ref::moe_block.
void test_block(const Problem& pb) {
  const gpu::Permutation p = gpu::permute(pb.local.reshape({-1}), pb.E);
  const at::Tensor xs = gpu::gather_rows(pb.x, p.sorted_slot, pb.k);
  const gpu::SwigluForward f = gpu::swiglu_forward(xs, p.offsets, pb.wg, pb.wu, pb.wd);
  const at::Tensor out = gpu::combine_forward(f.y, p.slot_row, pb.gates, pb.T, pb.k);
  const at::Tensor want = ref::moe_block(pb.x, pb.local, pb.gates, pb.wg, pb.wu, pb.wd);
  expect_close("block out (fp32)", out, want, 1e-5 * want.abs().max().item<double>(), 1e-5);
}

}  // namespace

int main() {
  if (!torch::cuda::is_available()) {
    std::printf("no CUDA device\n");
    return 1;
  }
  torch::manual_seed(7);
  // The fp32 reference relies on PyTorch's default of no TF32 in cuBLAS matmuls.
  for (bool norm : {true, false})
    for (int k : {1, 2})
      for (bool renorm : {false, true})
        for (bool random : {false, true}) test_routing(norm, k, renorm, random, norm ? 96 : 24);
  test_routing(true, 1, false, false, 7);
  test_permute(1, 3);
  test_permute(4099, 7);
  test_permute(2 * 8192, 96);
  test_permute(1000, 1500);
  for (int64_t k : {1, 2}) {
    const Problem pb = make_problem(777, k, 9, 96, 160);
    const std::string tag = " k" + std::to_string(k);
    for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
      const std::string t = tag + (dt == at::kFloat ? " f32" : " bf16");
      test_swiglu(dt, pb, t);
      test_combine(dt, pb, t);
    }
    test_block(pb);
  }
  torch::cuda::synchronize();
  std::printf("%s: %d failed\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
