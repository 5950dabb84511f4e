// Our own model files as MoE checkpoints: the pool tensors (N, h, d) / (N, d, h) hold every
// expert; a group's experts are a bank, routed by the group's layers (SPEC section 6).
#include <nlohmann/json.hpp>

#include "hf/layout_util.h"
#include "unipool/architecture.h"
#include "unipool/config.h"

namespace unipool::hf {

namespace {

const StoredTensor& need(const std::map<std::string, StoredTensor>& tensors,
                         const std::string& name) {
  const auto it = tensors.find(name);
  if (it == tensors.end()) throw MoeLayoutError("UniPool model file without " + name);
  return it->second;
}

}  // namespace

MoeArchitecture read_own_layout(const std::map<std::string, StoredTensor>& tensors,
                                const std::map<std::string, std::string>& metadata) {
  const auto config_text = metadata.find("config");
  if (config_text == metadata.end())
    throw MoeLayoutError("UniPool model file without its config in the metadata");
  const nlohmann::json c = nlohmann::json::parse(config_text->second, nullptr, false);
  const int64_t L = json_int(c, {"n_layers"}), G = json_int(c, {"layers_per_group"}),
                Mg = json_int(c, {"experts_per_group"}), h = json_int(c, {"expert_hidden"}),
                d = json_int(c, {"d_model"});
  // Bounded before any product: a file's config is untrusted (the engine's own checks are
  // tighter; these only keep the arithmetic below in range).
  constexpr int64_t kMax = 1 << 20;
  if (c.is_discarded() || L < 1 || G < 1 || L % G != 0 || Mg < 1 || h < 1 || d < 1 || L > kMax ||
      Mg > kMax || h > kMax || d > kMax)
    throw MoeLayoutError("UniPool model file with a config that names no expert pool");
  MoeArchitecture a;
  // "UniPool Studio: vanilla MoE", ...: which of our architectures it is.
  a.family = "UniPool Studio";
  try {
    a.family += ": " + architecture_title(architecture_of(config_from_json(config_text->second)));
  } catch (const std::exception&) {
    // A config the engine would refuse still has a pool to compare.
  }
  a.model_type = "unipool";
  a.n_layers = int(L);
  a.moe_layers = int(L);
  a.experts_per_bank = int(Mg);
  a.top_k = int(json_int(c, {"top_k"}));
  a.hidden = d;
  a.expert_hidden = h;
  a.vocab = json_int(c, {"vocab_size"});
  a.pool_shared = G > 1;
  const StoredTensor &gate = need(tensors, "pool.w_gate"), &up = need(tensors, "pool.w_up"),
                     &down = need(tensors, "pool.w_down");
  const int64_t N = (L / G) * Mg;
  const std::vector<int64_t> gate_shape = {N, h, d}, down_shape = {N, d, h};
  for (const auto* t : {&gate, &up, &down})
    if (t->info->dtype != DType::F32)
      throw MoeLayoutError("UniPool model file whose " + t->info->name + " is not F32");
  if (gate.info->shape != gate_shape || up.info->shape != gate_shape ||
      down.info->shape != down_shape)
    throw MoeLayoutError("UniPool model file whose pool tensors are not (" + std::to_string(N) +
                         ", " + std::to_string(h) + ", " + std::to_string(d) +
                         ") as its config says");
  for (int64_t g = 0; g < L / G; ++g) {
    ExpertBank bank;
    const int first = int(g * G), last = int(g * G + G - 1);
    bank.label = G == 1
                     ? "layer " + std::to_string(first)
                     : (L == G ? std::string("pool") : "pool " + std::to_string(g)) + " (layers " +
                           std::to_string(first) + "-" + std::to_string(last) + ")";
    for (int l = first; l <= last; ++l) bank.layers.push_back(l);
    for (int64_t i = 0; i < Mg; ++i) {
      const int64_t e = g * Mg + i;
      ExpertRef x;
      for (const auto* t : {&gate, &up, &down}) {
        MatrixRef m;
        m.file = t->file;
        m.tensor = t->info->name;
        m.rows = t->info->shape[1];
        m.cols = t->info->shape[2];
        m.first_row = e * m.rows;
        x.parts.push_back(m);
      }
      bank.experts.push_back(std::move(x));
    }
    a.banks.push_back(std::move(bank));
  }
  for (int l = 0; l < int(L); ++l) {
    RouterRef r;
    r.layer = l;
    r.bank = int(l / G);
    const std::string name = "layers." + std::to_string(l) + ".router.weight";
    const StoredTensor& t = need(tensors, name);
    if (t.info->shape != std::vector<int64_t>{Mg, d} || t.info->dtype != DType::F32)
      throw MoeLayoutError(name + " has shape " + shape_text(t.info->shape));
    r.weight.file = t.file;
    r.weight.tensor = name;
    r.weight.rows = Mg;
    r.weight.cols = d;
    a.routers.push_back(r);
  }
  count_parameters(a, tensors);
  return a;
}

}  // namespace unipool::hf
