// Helpers shared by the engine-internal tests (INTERNAL in CMakeLists.txt): tensors to and
// from plain vectors, naive reference pieces and small model configs. Header-only.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/experts.h"
#include "model/losses.h"
#include "model/parameters.h"
#include "model/rms_norm.h"
#include "model/rope.h"
#include "model/router.h"
#include "model/transformer.h"
#include "unipool/config.h"
#include "unipool/safetensors.h"

namespace testutil {

inline const at::TensorOptions kF64 = at::TensorOptions().dtype(at::kDouble);

// Normal random doubles from torch's generator with a fixed seed (reproducible within a run).
inline at::Tensor randn(at::IntArrayRef shape, uint64_t seed, double std_dev = 1.0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::normal(0.0, std_dev, shape, gen, kF64);
}

inline std::vector<double> to_vec(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

inline std::vector<int64_t> to_ivec(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Largest |a - b| relative to the largest |b| (or 1 when b is tiny).
inline double max_rel_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(1e-300, b.detach().abs().max().item<double>());
  return (a.detach().to(at::kDouble) - b.detach().to(at::kDouble)).abs().max().item<double>() /
         std::max(scale, 1e-12);
}

// Indices of the k largest entries, largest first, ties to the lower index (stable sort).
inline std::vector<int64_t> naive_topk(const std::vector<double>& row, int k) {
  std::vector<int64_t> idx(row.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return row[size_t(a)] > row[size_t(b)]; });
  idx.resize(size_t(k));
  return idx;
}

inline double silu(double v) { return v / (1.0 + std::exp(-v)); }

// A small valid config; callers change the fields they care about, then call finish().
inline unipool::ModelConfig small_config() {
  unipool::ModelConfig c;
  c.d_model = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.expert_hidden = 6;
  c.layers_per_group = 2;
  c.experts_per_group = 4;
  c.top_k = 2;
  c.router = "norm";
  c.balance = "pool";
  c.max_seq_len = 64;
  return c;
}

inline unipool::ModelConfig finish(unipool::ModelConfig c) {
  unipool::refresh_router_constant(c);
  unipool::validate(c);
  return c;
}

// Fresh double parameters made "interesting": matrices scaled up so routing and attention are
// far from uniform, and norm weights / router scales moved away from exactly 1 so that their
// multiplications are visible to the tests.
inline unipool::ParamStore lively_params(const unipool::ModelConfig& c, uint64_t seed,
                                         double gain = 12.0) {
  unipool::ParamStore p = unipool::init_parameters(c, seed, at::kDouble);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < p.size(); ++i) {
    at::Tensor& t = p.tensor(i);
    const std::string& name = p.name(i);
    if (name.find("norm.weight") != std::string::npos ||
        name.find("router.scale") != std::string::npos) {
      t.add_(randn(t.sizes(), seed * 1000 + i, 0.2));
    } else {
      t.mul_(gain);
    }
  }
  return p;
}

// A model file's tensors as a ParamStore of `dtype`, in SPEC order.
inline unipool::ParamStore load_store(const std::string& path, const unipool::ModelConfig& c,
                                      at::ScalarType dtype) {
  const unipool::SafetensorsFile f = unipool::read_safetensors(path);
  unipool::ParamStore p;
  for (const auto& [name, shape] : unipool::expected_parameters(c)) {
    const unipool::TensorRecord* r = f.find(name);
    TORCH_CHECK(r && r->dtype == unipool::DType::F32, "bad tensor ", name);
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
    std::memcpy(t.data_ptr<float>(), r->bytes.data(), r->bytes.size());
    p.add(name, t.to(dtype).requires_grad_(true));
  }
  return p;
}

}  // namespace testutil
