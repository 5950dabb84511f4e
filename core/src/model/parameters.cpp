// The model's parameters: the ordered store, the SPEC section 6 names and shapes, and the
// seeded initialisation.
#include "model/parameters.h"

#include <cmath>

#include "model/param_names.h"
#include "unipool/random.h"

namespace unipool {

void ParamStore::add(const std::string& name, at::Tensor tensor) {
  TORCH_CHECK(!contains(name), "duplicate parameter ", name);
  index_[name] = names_.size();
  names_.push_back(name);
  tensors_.push_back(std::move(tensor));
}

at::Tensor& ParamStore::get(const std::string& name) {
  auto it = index_.find(name);
  TORCH_CHECK(it != index_.end(), "no parameter named ", name);
  return tensors_[it->second];
}

const at::Tensor& ParamStore::get(const std::string& name) const {
  return const_cast<ParamStore*>(this)->get(name);
}

bool ParamStore::decays(const std::string& name) { return !param_names::is_norm_or_scale(name); }

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(
    const ModelConfig& c) {
  const int64_t V = c.vocab_size, d = c.d_model, hd = c.head_dim(), h = c.expert_hidden;
  const int64_t N = c.n_experts(), Mg = c.experts_per_group;
  using namespace param_names;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({kEmbed, {V, d}});
  for (int l = 0; l < c.n_layers; ++l) {
    out.push_back({attn_norm(l), {d}});
    out.push_back({q_proj(l), {c.n_heads * hd, d}});
    out.push_back({k_proj(l), {c.n_kv_heads * hd, d}});
    out.push_back({v_proj(l), {c.n_kv_heads * hd, d}});
    out.push_back({o_proj(l), {d, c.n_heads * hd}});
    out.push_back({ffn_norm(l), {d}});
    out.push_back({router_weight(l), {Mg, d}});
    if (c.router == "norm") out.push_back({router_scale(l), {1}});
  }
  out.push_back({kPoolGate, {N, h, d}});
  out.push_back({kPoolUp, {N, h, d}});
  out.push_back({kPoolDown, {N, d, h}});
  out.push_back({kFinalNorm, {d}});
  out.push_back({kLmHead, {V, d}});
  return out;
}

ParamStore init_parameters(const ModelConfig& c, uint64_t seed, at::ScalarType dtype,
                           double router_std) {
  // GPT-2 style: N(0, 0.02), residual outputs (o_proj, w_down) scaled by 1/sqrt(2L).
  const double base = 0.02, residual = base / std::sqrt(2.0 * c.n_layers);
  ParamStore store;
  uint64_t index = 0;
  for (const auto& [name, shape] : expected_parameters(c)) {
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(at::kDouble));
    double* p = t.data_ptr<double>();
    const bool is_one = param_names::is_norm_or_scale(name);
    double std_dev = param_names::is_residual_output(name) ? residual : base;
    if (router_std > 0 && param_names::is_router_weight(name)) std_dev = router_std;
    Rng rng(hash_u64(seed, index++));  // one stream per tensor: adding one shifts no other
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = is_one ? 1.0 : std_dev * rng.normal();
    store.add(name, t.to(dtype).requires_grad_(true));
  }
  return store;
}

}  // namespace unipool
