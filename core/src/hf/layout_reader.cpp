// The MoE layouts in use, by their tensor names (per layer, after "<prefix>layers.<l>."):
//   Mixtral            block_sparse_moe.gate.weight (E, H); block_sparse_moe.experts.<e>.w1
//                      (gate, (I, H)), w3 (up, (I, H)), w2 (down, (H, I)) .weight
//   OLMoE, Qwen-MoE,   mlp.gate.weight (E, H); mlp.experts.<e>.gate_proj/up_proj/down_proj
//   DeepSeek-V2/V3     .weight; Qwen2-MoE's mlp.shared_expert.*, DeepSeek's mlp.shared_experts.*;
//                      dense layers mlp.gate_proj.weight (DeepSeek's first_k_dense_replace)
//   fused experts      <moe>.experts.gate_up_proj (E, a, b) and down_proj (E, c, d) with the
//                      router mlp.router (GPT-OSS), feed_forward.router (Llama 4) or mlp.gate
//                      (transformers v5): expert e is slice e
//   FP8                <matrix>.weight F8_E4M3 with <matrix>.weight_scale_inv (F32, one per
//                      128 x 128 block: W = fp8 * scale_inv) or .weight_scale (per tensor)
// Our own files (format "unipool") are read by own_layout.cpp.
#include "hf/layout_reader.h"

#include <algorithm>
#include <set>

#include "hf/dtype_convert.h"
#include "hf/layout_util.h"

namespace unipool::hf {

namespace {

const char* const kPerExpert[][4] = {
    // moe prefix, gate, up, down
    {"block_sparse_moe", "w1", "w3", "w2"},
    {"mlp", "gate_proj", "up_proj", "down_proj"},
    {"feed_forward", "gate_proj", "up_proj", "down_proj"},
};
const char* const kRouters[] = {"block_sparse_moe.gate.weight", "mlp.gate.weight",
                                "mlp.router.weight", "feed_forward.router.weight"};
const char* const kShared[] = {"mlp.shared_expert", "mlp.shared_experts",
                               "feed_forward.shared_expert"};

struct LayerNames {
  std::map<std::string, StoredTensor> rest;  // name after "<prefix>layers.<l>."
};

// "<prefix>layers.<l>.<rest>" -> prefix, l, rest.
bool split_layer_name(const std::string& name, std::string* prefix, int* layer, std::string* rest) {
  size_t at = 0;
  while ((at = name.find("layers.", at)) != std::string::npos) {
    if (at == 0 || name[at - 1] == '.') {
      size_t i = at + 7, digits = 0;
      int l = 0;
      while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && digits < 6) {
        l = l * 10 + (name[i] - '0');
        ++i;
        ++digits;
      }
      const bool leading_zero = digits > 1 && name[at + 7] == '0';  // "01" would alias "1"
      if (digits > 0 && !leading_zero && i < name.size() && name[i] == '.') {
        *prefix = name.substr(0, at);
        *layer = l;
        *rest = name.substr(i + 1);
        return true;
      }
    }
    at += 7;
  }
  return false;
}

class HfReader {
 public:
  HfReader(const std::map<std::string, StoredTensor>& tensors, const nlohmann::json& config)
      : tensors_(tensors), config_(config) {}

  MoeArchitecture read() {
    std::map<std::string, std::map<int, LayerNames>> by_prefix;
    for (const auto& [name, t] : tensors_) {
      std::string prefix, rest;
      int l = 0;
      if (split_layer_name(name, &prefix, &l, &rest)) by_prefix[prefix][l].rest[rest] = t;
    }
    // The stack with experts (a multimodal file also has vision layers).
    const std::map<int, LayerNames>* layers = nullptr;
    for (const auto& [prefix, stack] : by_prefix) {
      for (const auto& [l, names] : stack) {
        if (router_of(names)) {
          layers = &stack;
          prefix_ = prefix;
          break;
        }
      }
      if (layers) break;
    }
    if (!layers) throw MoeLayoutError(not_recognised());
    MoeArchitecture a;
    for (const auto& [l, names] : *layers) read_layer(a, l, names);
    finish(a);
    return a;
  }

 private:
  const char* router_of(const LayerNames& n) const {
    for (const char* r : kRouters)
      if (n.rest.count(r)) return r;
    return nullptr;
  }

  std::string not_recognised() const {
    std::string found;
    int shown = 0;
    for (const auto& [name, t] : tensors_) {
      if (shown++ == 6) break;
      found += (found.empty() ? "" : ", ") + name;
    }
    return "no Mixture-of-Experts layout recognised in " + std::to_string(tensors_.size()) +
           " tensors (e.g. " + found +
           "): no layer has a router (block_sparse_moe.gate, mlp.gate, mlp.router or "
           "feed_forward.router) with experts beside it. A dense model has no experts to compare.";
  }

  void read_layer(MoeArchitecture& a, int l, const LayerNames& n) {
    const std::string where = "layer " + std::to_string(l);
    const char* router = router_of(n);
    if (!router) {
      for (const char* moe : {"mlp", "feed_forward"})
        if (n.rest.count(std::string(moe) + ".gate_proj.weight")) a.dense_layers.push_back(l);
      return;
    }
    const std::string moe = std::string(router).substr(0, std::string(router).find('.'));
    for (const char* fused : {".experts.gate_up_proj_blocks", ".experts.down_proj_blocks"})
      if (n.rest.count(moe + fused))
        throw MoeLayoutError(where + ": the experts are MXFP4-quantised (" + moe + fused +
                             " and _scales): not read; open a BF16 copy of the checkpoint");
    ExpertBank bank;
    bank.label = where;
    bank.layers = {l};
    if (!read_fused(bank, n, moe, where)) read_per_expert(bank, n, moe, where);
    if (bank.experts.empty())
      throw MoeLayoutError(where + ": has a router (" + router + ") but no experts beside it");
    RouterRef r;
    r.layer = l;
    r.bank = int(a.banks.size());
    r.weight = matrix(n.rest.at(router), n.rest.at(router).info->name);
    if (!a.routers.empty() && r.weight.cols != a.routers[0].weight.cols)
      throw MoeLayoutError(where + ": the router has " + std::to_string(r.weight.cols) +
                           " columns, layer " + std::to_string(a.routers[0].layer) + "'s " +
                           std::to_string(a.routers[0].weight.cols));
    if (r.weight.rows != int64_t(bank.experts.size()))
      throw MoeLayoutError(where + ": the router has " + std::to_string(r.weight.rows) +
                           " rows for " + std::to_string(bank.experts.size()) + " experts");
    for (const char* shared : kShared) {
      const std::string base = std::string(shared) + ".";
      if (!n.rest.count(base + "gate_proj.weight")) continue;
      ExpertRef e;
      for (const char* part : {"gate_proj", "up_proj", "down_proj"})
        e.parts.push_back(named(n, base + part + ".weight", where));
      a.shared_per_layer = std::max(a.shared_per_layer, 1);
      a.shared_hidden = e.parts[0].rows;
      a.shared_params += e.params();
    }
    check_same_shapes(a, bank, where);
    a.banks.push_back(std::move(bank));
    a.routers.push_back(std::move(r));
  }

  bool read_fused(ExpertBank& bank, const LayerNames& n, const std::string& moe,
                  const std::string& where) {
    std::vector<const StoredTensor*> parts;
    std::vector<std::string> names;
    for (const char* leaf : {".experts.gate_up_proj", ".experts.down_proj"}) {
      const std::string base = moe + leaf;
      const auto it = n.rest.count(base) ? n.rest.find(base) : n.rest.find(base + ".weight");
      if (it == n.rest.end()) return false;
      parts.push_back(&it->second);
      names.push_back(it->second.info->name);
    }
    const int64_t E = parts[0]->info->shape.empty() ? 0 : parts[0]->info->shape[0];
    for (size_t p = 0; p < 2; ++p) {
      const auto& shape = parts[p]->info->shape;
      if (shape.size() != 3 || shape[0] != E || E < 1 || shape[1] < 1 || shape[2] < 1)
        throw MoeLayoutError(where + ": fused expert tensor " + names[p] + " has shape " +
                             shape_text(shape) + "; expected (experts, rows, cols) for both");
      if (!is_float_dtype(parts[p]->info->dtype) || dtype_size(parts[p]->info->dtype) == 1)
        throw MoeLayoutError(where + ": fused expert tensor " + names[p] + " is " +
                             dtype_name(parts[p]->info->dtype) +
                             ": only BF16, F16 and F32 fused experts are read");
    }
    for (int64_t e = 0; e < E; ++e) {
      ExpertRef x;
      for (size_t p = 0; p < 2; ++p) {
        const auto& shape = parts[p]->info->shape;
        MatrixRef m;
        m.file = parts[p]->file;
        m.tensor = names[p];
        m.rows = shape[1];
        m.cols = shape[2];
        m.first_row = e * shape[1];
        x.parts.push_back(m);
      }
      bank.experts.push_back(std::move(x));
    }
    return true;
  }

  void read_per_expert(ExpertBank& bank, const LayerNames& n, const std::string& moe,
                       const std::string& where) {
    const char* const* parts = nullptr;
    for (const auto& p : kPerExpert)
      if (moe == p[0]) parts = p;
    if (!parts) return;
    std::set<int> ids;
    const std::string head = moe + ".experts.";
    for (const auto& [rest, t] : n.rest) {
      if (rest.compare(0, head.size(), head) != 0) continue;
      size_t i = head.size();
      int e = 0, digits = 0;
      while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])) && digits < 7)
        e = e * 10 + (rest[i++] - '0'), ++digits;
      if (digits > 0 && i < rest.size() && rest[i] == '.') ids.insert(e);
    }
    if (ids.empty()) return;
    if (*ids.rbegin() != int(ids.size()) - 1)
      throw MoeLayoutError(where + ": expert indices are not 0.." + std::to_string(ids.size() - 1) +
                           " (the largest is " + std::to_string(*ids.rbegin()) +
                           "): a shard may be missing");
    for (int e : ids) {
      ExpertRef x;
      for (int p = 1; p <= 3; ++p)
        x.parts.push_back(named(n, head + std::to_string(e) + "." + parts[p] + ".weight", where));
      bank.experts.push_back(std::move(x));
    }
  }

  MatrixRef named(const LayerNames& n, const std::string& rest, const std::string& where) {
    const auto it = n.rest.find(rest);
    if (it == n.rest.end() && n.rest.count(rest + "_packed"))  // compressed-tensors int4/int8
      throw MoeLayoutError(where + ": " + rest +
                           "_packed: the experts are stored packed (compressed-tensors "
                           "quantisation): not read; open a BF16 copy of the checkpoint");
    if (it == n.rest.end())
      throw MoeLayoutError(where + ": " + prefix_ + "layers." + where.substr(6) + "." + rest +
                           " is missing");
    return matrix(it->second, it->second.info->name);
  }

  // A 2-D weight, with FP8's scale tensor found beside it.
  MatrixRef matrix(const StoredTensor& t, const std::string& name) {
    const auto& shape = t.info->shape;
    if (shape.size() != 2 || shape[0] < 1 || shape[1] < 1)
      throw MoeLayoutError(name + " has shape " + shape_text(shape) + ": expected a matrix");
    if (!is_float_dtype(t.info->dtype))
      throw MoeLayoutError(name + " is " + std::string(dtype_name(t.info->dtype)) +
                           ": expert and router weights must be floating point");
    MatrixRef m;
    m.file = t.file;
    m.tensor = name;
    m.rows = shape[0];
    m.cols = shape[1];
    if (dtype_size(t.info->dtype) == 1) attach_fp8_scale(m, t, name, tensors_, config_);
    return m;
  }

  void check_same_shapes(MoeArchitecture& a, const ExpertBank& bank, const std::string& where) {
    for (size_t e = 0; e < bank.experts.size(); ++e) {
      const ExpertRef& x = bank.experts[e];
      if (reference_.parts.empty()) reference_ = x;
      for (size_t p = 0; p < x.parts.size(); ++p) {
        if (x.parts.size() != reference_.parts.size() ||
            x.parts[p].rows != reference_.parts[p].rows ||
            x.parts[p].cols != reference_.parts[p].cols)
          throw MoeLayoutError(where + " expert " + std::to_string(e) + ": " + x.parts[p].tensor +
                               " is " + std::to_string(x.parts[p].rows) + " x " +
                               std::to_string(x.parts[p].cols) + ", unlike " +
                               reference_.parts[std::min(p, reference_.parts.size() - 1)].tensor +
                               ": every routed expert must have the same shapes");
      }
    }
    if (!a.banks.empty() && a.banks[0].experts.size() != bank.experts.size())
      throw MoeLayoutError(where + " has " + std::to_string(bank.experts.size()) + " experts, " +
                           a.banks[0].label + " has " + std::to_string(a.banks[0].experts.size()));
  }

  void finish(MoeArchitecture& a) {
    a.model_type = config_.is_object() ? json_string(config_, "model_type") : "";
    a.family = family_name(a.model_type, layout_name());
    a.experts_per_bank = int(a.banks[0].experts.size());
    a.moe_layers = int(a.banks.size());
    const MatrixRef& gate = a.banks[0].experts[0].parts[0];
    a.hidden = a.routers[0].weight.cols;
    // Fused gate_up is (H, 2I) (GPT-OSS, Llama 4) or (2I, H) (transformers v5).
    const bool fused = a.banks[0].experts[0].parts.size() == 2;
    a.expert_hidden = !fused ? gate.rows : gate.rows == a.hidden ? gate.cols / 2 : gate.rows / 2;
    a.top_k = int(json_int(config_, {"num_experts_per_tok", "experts_per_token", "top_k"}));
    a.vocab = json_int(config_, {"vocab_size"});
    int max_layer = 0;
    for (const auto& r : a.routers) max_layer = std::max(max_layer, r.layer);
    for (int l : a.dense_layers) max_layer = std::max(max_layer, l);
    a.n_layers = int(json_int(config_, {"num_hidden_layers"}));
    if (a.n_layers <= max_layer) {
      if (a.n_layers > 0)
        a.notes.push_back("config.json says " + std::to_string(a.n_layers) +
                          " layers; the tensors reach layer " + std::to_string(max_layer));
      a.n_layers = max_layer + 1;
    }
    const int64_t E = json_int(config_, {"num_local_experts", "num_experts", "n_routed_experts"});
    if (E > 0 && E != a.experts_per_bank)
      a.notes.push_back("config.json says " + std::to_string(E) + " experts per layer; " +
                        std::to_string(a.experts_per_bank) + " are stored");
    if (!config_.is_object())
      a.notes.push_back("no config.json: top-k and the vocabulary are unknown");
    count_parameters(a, tensors_);
  }

  std::string layout_name() const {
    std::set<std::string> kinds;
    for (const auto& [name, t] : tensors_) {
      if (name.find(".block_sparse_moe.") != std::string::npos) return "Mixtral layout";
      if (name.find(".mlp.router.") != std::string::npos) return "GPT-OSS layout";
      if (name.find(".feed_forward.experts.") != std::string::npos) return "Llama 4 layout";
      if (name.find(".mlp.shared_experts.") != std::string::npos) kinds.insert("deepseek");
      if (name.find(".mlp.shared_expert.") != std::string::npos) kinds.insert("qwen2");
      if (name.find(".mlp.experts.gate_up_proj") != std::string::npos) kinds.insert("v5");
    }
    if (kinds.count("deepseek")) return "DeepSeek layout";
    if (kinds.count("qwen2")) return "Qwen2-MoE layout";
    if (kinds.count("v5")) return "fused-experts layout (transformers v5)";
    return "OLMoE / Qwen3-MoE layout";
  }

  const std::map<std::string, StoredTensor>& tensors_;
  const nlohmann::json& config_;
  std::string prefix_;
  ExpertRef reference_;
};

}  // namespace

MoeArchitecture read_layout(const std::map<std::string, StoredTensor>& tensors,
                            const nlohmann::json& config) {
  return HfReader(tensors, config).read();
}

}  // namespace unipool::hf
