// HfModel: a downloaded MoE checkpoint's forward pass over windows of token ids. Windows are
// run in chunks of about kChunkTokens tokens; within a chunk the pass goes layer by layer,
// converting that layer's weights as it reaches them and giving their pages back after, so
// resident memory is one layer's weights plus the chunk's activations.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hf/layout_util.h"
#include "model/parallel_work.h"
#include "hf/run_config.h"
#include "hf/run_layers.h"
#include "hf/run_moe.h"
#include "hf/run_tensors.h"
#include "hf/run_weights.h"
#include "model/router.h"
#include "unipool/hf_model.h"
#include "unipool/mapped_safetensors.h"
#include "unipool/random.h"

namespace unipool {

namespace {

namespace fs = std::filesystem;
using hf::RunConfig;

constexpr int64_t kChunkTokens = 2048;  // tokens per pass: activations stay small
constexpr int64_t kVocabBlock = 8192;   // lm_head rows converted at a time
constexpr uint64_t kSaltRandomRouting = 0x52414e44;

nlohmann::json read_config_json(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  const fs::path folder = fs::is_directory(p, ec) ? p : p.parent_path();
  const fs::path file = folder / "config.json";
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw MoeLayoutError(path + ": no config.json beside the weights (a downloaded model "
                                "needs it to run)");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw FormatError(file.string() + ": not a JSON object");
  return j;
}

// Where a chunk's routes go: (MoE layer index, first window token, routed layer).
using RouteSink = std::function<void(int, const hf::RoutedLayer&)>;

}  // namespace

struct HfModel::Impl {
  std::unique_ptr<MoeCheckpoint> checkpoint;
  nlohmann::json config_json;
  RunConfig config;
  std::unique_ptr<hf::RunWeights> weights;
  HfModelInfo info;
  std::vector<int> moe_index;  // (n_layers): position in moe_layers, -1 for a dense layer

  // Final-normed hidden states of windows `ids` (B, S) int64: (B * S, hidden).
  at::Tensor hidden(const at::Tensor& ids, const std::vector<bool>* random, uint64_t draw,
                    int64_t first_token, const RouteSink& sink,
                    const std::function<void(int)>& layer_done) const;
  // Per-token CE and argmax of the next-token distribution, lm_head in vocabulary blocks.
  void head(const at::Tensor& h, const at::Tensor& targets, at::Tensor* ce,
            at::Tensor* argmax) const;
};

at::Tensor HfModel::Impl::hidden(const at::Tensor& ids, const std::vector<bool>* random,
                                 uint64_t draw, int64_t first_token, const RouteSink& sink,
                                 const std::function<void(int)>& layer_done) const {
  const RunConfig& c = config;
  const hf::RunWeights& w = *weights;
  const int64_t B = ids.size(0), S = ids.size(1), T = B * S;
  // Embedding rows of the distinct ids only: a large vocabulary is never converted whole.
  const at::Tensor flat = ids.reshape({-1});
  const auto [unique, inverse] = at::_unique(flat, true, true);
  std::vector<int64_t> rows(unique.data_ptr<int64_t>(),
                            unique.data_ptr<int64_t>() + unique.numel());
  at::Tensor x = w.rows("model.embed_tokens.weight", c.vocab, c.hidden, rows)
                     .index_select(0, inverse)
                     .view({B, S, c.hidden});
  const hf::RopeTables rope = hf::rope_tables(c.rope, S);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = hf::layer_prefix(l);
    at::Tensor h = hf::rms_norm(x, w.get(p + "input_layernorm.weight", {c.hidden}), c.rms_eps);
    x = x + hf::attention(c, w, l, h, rope);
    h = hf::rms_norm(x, w.get(p + "post_attention_layernorm.weight", {c.hidden}), c.rms_eps)
            .view({T, c.hidden});
    const int m = moe_index[size_t(l)];
    const bool is_random = m >= 0 && random && (*random)[size_t(m)];
    hf::RoutedLayer routed;
    x = x + hf::feed_forward(c, w, l, h, is_random, hash_u64(draw, kSaltRandomRouting, uint64_t(l)),
                             first_token, &routed)
                .view({B, S, c.hidden});
    if (m >= 0 && sink) sink(m, routed);
    w.release_prefix(p);
    if (layer_done) layer_done(l);
  }
  return hf::rms_norm(x, w.get("model.norm.weight", {c.hidden}), c.rms_eps).view({T, c.hidden});
}

void HfModel::Impl::head(const at::Tensor& h, const at::Tensor& targets, at::Tensor* ce,
                         at::Tensor* argmax) const {
  const RunConfig& c = config;
  const std::string name = c.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  const int64_t T = h.size(0);
  const float inf = std::numeric_limits<float>::infinity();
  at::Tensor run_max = at::full({T}, -inf), run_sum = at::zeros({T});
  at::Tensor best = at::full({T}, -inf), best_id = at::zeros({T}, at::kLong);
  at::Tensor target_logit = at::zeros({T});
  for (int64_t v0 = 0; v0 < c.vocab; v0 += kVocabBlock) {
    const int64_t n = std::min(kVocabBlock, c.vocab - v0);
    const at::Tensor logits = at::mm(h, weights->row_block(name, c.vocab, c.hidden, v0, n).t());
    const auto [block_max, block_arg] = logits.max(1);
    const at::Tensor better = block_max > best;  // strict: the lowest id wins a tie
    best = at::where(better, block_max, best);
    best_id = at::where(better, block_arg + v0, best_id);
    const at::Tensor new_max = at::maximum(run_max, block_max);
    run_sum = run_sum * at::exp(run_max - new_max) +
              at::exp(logits - new_max.unsqueeze(1)).sum(1);
    run_max = new_max;
    const at::Tensor inside = (targets >= v0) & (targets < v0 + n);
    const at::Tensor local = (targets - v0).clamp(0, n - 1).unsqueeze(1);
    target_logit = at::where(inside, logits.gather(1, local).squeeze(1), target_logit);
  }
  weights->release(name);
  *ce = run_max + at::log(run_sum) - target_logit;
  *argmax = best_id;
}

const std::vector<std::string>& runnable_model_types() { return hf::runnable_model_types(); }

bool looks_downloaded(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return true;
  if (fs::path(path).extension() != ".safetensors") return false;
  try {
    const MappedSafetensors file(path);
    const auto format = file.metadata().find("format");
    return format == file.metadata().end() || format->second != "unipool";
  } catch (const std::exception&) {
    return false;  // unreadable: the caller's own open says why
  }
}

HfModel::HfModel() : impl_(std::make_unique<Impl>()) {}
HfModel::~HfModel() = default;

std::unique_ptr<HfModel> HfModel::open(const std::string& path, const ProgressFn& progress) {
  std::unique_ptr<HfModel> m(new HfModel);
  Impl& d = *m->impl_;
  d.config_json = read_config_json(path);
  d.config = hf::read_run_config(d.config_json);
  d.checkpoint = MoeCheckpoint::open(path, progress);
  const MoeArchitecture& a = d.checkpoint->architecture();
  if (a.pool_shared || a.family == "UniPool")
    throw MoeLayoutError(path + " is one of our own UniPool models: open it as a checkpoint");
  d.weights = std::make_unique<hf::RunWeights>(*d.checkpoint, d.config_json);
  hf::check_tensors(d.config, *d.weights);
  d.config.family = hf::family_name(d.config.model_type, a.family);
  HfModelInfo& i = d.info;
  i.family = d.config.family;
  i.model_type = d.config.model_type;
  i.path = path;
  i.n_layers = d.config.n_layers;
  i.moe_layers = d.config.moe_layers();
  i.n_experts = d.config.n_experts;
  i.top_k = d.config.top_k;
  i.vocab = d.config.vocab;
  i.hidden = d.config.hidden;
  i.notes = a.notes;
  d.moe_index.assign(size_t(i.n_layers), -1);
  for (size_t k = 0; k < i.moe_layers.size(); ++k) d.moe_index[size_t(i.moe_layers[k])] = int(k);
  return m;
}

const HfModelInfo& HfModel::info() const { return impl_->info; }

double HfModel::forward_flops(int64_t seq, int64_t windows, double* attention_and_experts) const {
  const RunConfig& c = impl_->config;
  const double T = double(seq) * double(windows), D = double(c.hidden), H = double(c.n_heads);
  double projections = 0, core = 0;  // per token
  if (c.mla) {
    const double qk = double(c.qk_nope_dim + c.qk_rope_dim), v = double(c.v_head_dim);
    const double q = c.q_lora_rank > 0 ? D * c.q_lora_rank + double(c.q_lora_rank) * H * qk : D * H * qk;
    projections = 2 * (q + D * double(c.kv_lora_rank + c.qk_rope_dim) +
                       double(c.kv_lora_rank) * H * (double(c.qk_nope_dim) + v) + H * v * D);
    core = 2 * double(seq) * H * (qk + v);
  } else {
    const double hd = double(c.head_dim), kv = double(c.n_kv_heads) * hd;
    projections = 2 * (D * H * hd + 2 * D * kv + H * hd * D);
    core = 2 * double(seq) * H * hd * 2;
  }
  double experts = 0, other = 2 * D * double(c.vocab);  // lm_head
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.moe_layer[size_t(l)]) {
      other += 2 * 3 * D * double(c.dense_hidden);
      continue;
    }
    other += 2 * D * c.n_experts + (c.shared_gate ? 2 * D : 0);
    experts += 2 * 3 * D * double(c.expert_hidden) * c.top_k + 2 * 3 * D * double(c.shared_hidden);
  }
  const double attention = c.n_layers * (projections + core);
  if (attention_and_experts) *attention_and_experts = T * (attention + experts);
  return T * (attention + experts + other);
}

void HfModel::set_weight_threads(int threads) { impl_->weights->set_threads(threads); }

void HfModel::set_threads(int threads) {
  use_blas_threads(threads);  // large GEMMs: OpenBLAS gets the threads, LibTorch's pool one
  impl_->weights->set_threads(threads);
}

namespace {

void check_ids(const std::vector<int32_t>& ids, int64_t vocab) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw std::invalid_argument("token id " + std::to_string(ids[i]) + " at position " +
                                  std::to_string(i) + " is outside the vocabulary [0, " +
                                  std::to_string(vocab) + ")");
}

// ids[first .. first + n) as an int64 tensor.
at::Tensor id_tensor(const std::vector<int32_t>& ids, int64_t first, int64_t n) {
  std::vector<int64_t> v(ids.begin() + first, ids.begin() + first + n);
  return at::tensor(v, at::kLong);
}

// Counts of one chunk's routes into `r` (rows: MoE layers in order).
void count_routes(RoutingCounts& r, int m, const hf::RoutedLayer& routed) {
  const at::Tensor experts = routed.experts.contiguous();
  const at::Tensor gates = routed.gates.to(at::kDouble).contiguous();
  const int64_t T = experts.size(0), k = experts.size(1), E = r.experts_per_group;
  const int64_t* ep = experts.data_ptr<int64_t>();
  const double* gp = gates.data_ptr<double>();
  for (int64_t t = 0; t < T; ++t) {
    bool zero = true;
    for (int64_t j = 0; j < k; ++j) {
      const size_t cell = size_t(m) * size_t(E) + size_t(ep[t * k + j]);
      ++r.counts[cell];
      r.gate_sum[cell] += gp[t * k + j];
      zero = zero && gp[t * k + j] == 0.0;
    }
    if (zero) ++r.zero_gate[size_t(m)];
  }
  r.entropy_sum[size_t(m)] += router_entropy_sum(routed.scores);
}

}  // namespace

EvalResult HfModel::evaluate(const std::vector<int32_t>& ids, int seq,
                             const std::optional<std::vector<bool>>& random, int64_t max_windows,
                             uint64_t draw, const ProgressFn& progress) const {
  const Impl& d = *impl_;
  const int n_moe = int(d.info.moe_layers.size());
  if (seq < 1) throw std::invalid_argument("the window length must be >= 1");
  if (random && random->size() != size_t(n_moe))
    throw std::invalid_argument("random routing needs one switch per MoE layer (" +
                                std::to_string(n_moe) + ")");
  check_ids(ids, d.config.vocab);
  int64_t windows = ids.empty() ? 0 : (int64_t(ids.size()) - 1) / seq;
  if (max_windows >= 0) windows = std::min(windows, max_windows);
  if (windows < 1)
    throw std::invalid_argument("evaluation needs at least " + std::to_string(seq + 1) +
                                " tokens for one window of " + std::to_string(seq) + "; got " +
                                std::to_string(ids.size()));
  EvalResult result;
  result.routing = RoutingCounts(n_moe, 1, d.config.n_experts, d.config.top_k);
  const int64_t per_chunk = std::max<int64_t>(1, kChunkTokens / seq);
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += per_chunk) {
    const int64_t B = std::min(per_chunk, windows - w0);
    const at::Tensor window_ids = id_tensor(ids, w0 * seq, B * seq + 1);
    const at::Tensor inputs = window_ids.narrow(0, 0, B * seq).view({B, seq});
    const at::Tensor targets = window_ids.narrow(0, 1, B * seq).view({B, seq});
    const auto on_layer = [&](int l) {
      const double done = (double(w0) + double(B) * (l + 1) / (d.config.n_layers + 1)) / windows;
      if (progress && !progress(done, "layer " + std::to_string(l + 1) + " of " +
                                          std::to_string(d.config.n_layers)))
        throw Cancelled("evaluation cancelled");
    };
    const at::Tensor h = d.hidden(
        inputs, random ? &*random : nullptr, draw, w0 * seq,
        [&](int m, const hf::RoutedLayer& r) { count_routes(result.routing, m, r); }, on_layer);
    at::Tensor ce, argmax;
    const at::Tensor flat_targets = targets.reshape({-1});
    d.head(h, flat_targets, &ce, &argmax);
    loss_sum += ce.to(at::kDouble).sum().item<double>();
    correct += (argmax == flat_targets).sum().item<int64_t>();
    result.routing.tokens += B * seq;
  }
  result.routing.reuse_sum = double(result.routing.tokens);  // a layer's experts are its own
  result.n_targets = windows * seq;
  result.loss = loss_sum / double(result.n_targets);
  result.accuracy = double(correct) / double(result.n_targets);
  return result;
}

HfRoutes HfModel::routes(const std::vector<int32_t>& ids, int seq,
                         const ProgressFn& progress) const {
  const Impl& d = *impl_;
  if (seq < 1) throw std::invalid_argument("the window length must be >= 1");
  check_ids(ids, d.config.vocab);
  HfRoutes r;
  r.moe_layers = int(d.info.moe_layers.size());
  r.top_k = d.config.top_k;
  r.n_tokens = int64_t(ids.size());
  r.ids = ids;
  const int64_t k = r.top_k, M = r.moe_layers;
  r.experts.resize(size_t(r.n_tokens * M * k));
  r.gates.resize(r.experts.size());
  const int64_t per_chunk = std::max<int64_t>(1, kChunkTokens / seq);
  // Full windows in chunks, then the last shorter window on its own.
  for (int64_t first = 0; first < r.n_tokens;) {
    const int64_t remaining = r.n_tokens - first;
    const int64_t S = std::min<int64_t>(seq, remaining);
    const int64_t B = S < seq ? 1 : std::min(per_chunk, remaining / seq);
    const at::Tensor inputs = id_tensor(ids, first, B * S).view({B, S});
    const auto on_layer = [&](int l) {
      const double done = (double(first) + double(B * S) * (l + 1) / (d.config.n_layers + 1)) /
                          double(r.n_tokens);
      if (progress && !progress(done, "layer " + std::to_string(l + 1) + " of " +
                                          std::to_string(d.config.n_layers)))
        throw Cancelled("routing cancelled");
    };
    d.hidden(inputs, nullptr, 0, first,
             [&](int m, const hf::RoutedLayer& routed) {
               const at::Tensor e = routed.experts.contiguous();
               const at::Tensor g = routed.gates.contiguous();
               for (int64_t t = 0; t < B * S; ++t)
                 for (int64_t j = 0; j < k; ++j) {
                   const size_t at_out = size_t(((first + t) * M + m) * k + j);
                   r.experts[at_out] = int32_t(e.data_ptr<int64_t>()[t * k + j]);
                   r.gates[at_out] = g.data_ptr<float>()[t * k + j];
                 }
             },
             on_layer);
    first += B * S;
  }
  return r;
}

}  // namespace unipool
