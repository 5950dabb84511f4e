#include "hf/run_moe.h"

#include <limits>

#include "hf/run_layers.h"
#include "model/router.h"

namespace unipool::hf {

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Keeps the experts of each token's best `topk_group` groups in `choice` (T, E); the others
// become -inf. Groups are scored by their best expert (DeepSeek-V2) or the sum of their best
// two (DeepSeek-V3).
at::Tensor limit_to_groups(const at::Tensor& choice, const RunConfig& c) {
  const int64_t T = choice.size(0), G = c.n_group, per = c.n_experts / c.n_group;
  const at::Tensor grouped = choice.view({T, G, per});
  const at::Tensor group_score = c.select == SelectKind::GroupMax
                                     ? std::get<0>(grouped.max(-1))
                                     : std::get<0>(grouped.topk(2, -1)).sum(-1);  // (T, G)
  const at::Tensor best = std::get<1>(group_score.topk(c.topk_group, -1));
  const at::Tensor keep = at::zeros({T, G}, at::kBool).scatter_(1, best, true);
  return grouped.masked_fill(~keep.unsqueeze(-1), kMinusInf).view({T, c.n_experts});
}

// Each token's tokens grouped by expert: the rows of x that go to expert e, with their gates.
void run_experts(const RunConfig& c, const RunWeights& w, int layer, const at::Tensor& x,
                 const at::Tensor& experts, const at::Tensor& gates, at::Tensor& out) {
  const int64_t T = x.size(0), k = experts.size(1);
  const at::Tensor flat = experts.reshape({-1}).contiguous();  // (T k)
  const at::Tensor order = flat.argsort();                     // stable enough: rows per expert
  const at::Tensor sorted = flat.index_select(0, order);
  const at::Tensor token = order.div(k, "floor");
  const at::Tensor gate = gates.reshape({-1}).index_select(0, order);
  const int64_t* sp = sorted.data_ptr<int64_t>();
  const std::string prefix = layer_prefix(layer) + c.moe_prefix() + ".experts.";
  MlpBuffers buffers;  // every expert of the layer has the same shapes
  int64_t begin = 0;
  while (begin < T * k) {
    int64_t end = begin;
    while (end < T * k && sp[end] == sp[begin]) ++end;
    const std::string name = prefix + std::to_string(sp[begin]) + ".";
    const MlpNames names = mlp_names(name, c.model_type == "mixtral");
    const at::Tensor rows = token.narrow(0, begin, end - begin);
    const at::Tensor y =
        swiglu(w, names, c.hidden, c.expert_hidden, x.index_select(0, rows), &buffers);
    out.index_add_(0, rows, y * gate.narrow(0, begin, end - begin).unsqueeze(1));
    for (const std::string* n : {&names.gate, &names.up, &names.down}) w.release(*n);
    begin = end;
  }
}

}  // namespace

RoutedLayer route(const RunConfig& c, const RunWeights& w, int layer, const at::Tensor& x,
                  bool random, uint64_t seed, int64_t first_token) {
  const std::string p = layer_prefix(layer) + c.moe_prefix() + ".gate.";
  const at::Tensor logits = at::linear(x, w.get(p + "weight", {c.n_experts, c.hidden}));
  RoutedLayer r;
  r.scores = c.score == ScoreKind::Softmax ? at::softmax(logits, -1) : at::sigmoid(logits);
  at::Tensor choice = r.scores;
  if (c.score_bias) choice = choice + w.get(p + "e_score_correction_bias", {c.n_experts});
  if (c.select != SelectKind::Greedy) choice = limit_to_groups(choice, c);
  const at::Tensor learned = std::get<1>(choice.topk(c.top_k, -1));
  r.gates = r.scores.gather(1, learned);
  if (c.renormalize) r.gates = r.gates / (r.gates.sum(-1, true) + c.renorm_epsilon);
  r.gates = r.gates * c.routed_scale;
  r.experts = learned;
  if (random) {  // SPEC section 3: random experts, each with the learned gates' mean
    r.experts = random_experts(x.size(0), c.n_experts, c.top_k, seed, first_token);
    r.gates = (r.gates.sum(-1, true) / double(c.top_k)).expand({x.size(0), c.top_k}).contiguous();
  }
  // Ascending expert ids per token, gates alongside (a stable order for routes and tests).
  const auto [sorted, perm] = r.experts.sort(-1);
  r.gates = r.gates.gather(1, perm);
  r.experts = sorted;
  return r;
}

at::Tensor feed_forward(const RunConfig& c, const RunWeights& w, int layer, const at::Tensor& x,
                        bool random, uint64_t seed, int64_t first_token, RoutedLayer* routed) {
  const std::string p = layer_prefix(layer) + "mlp.";
  if (!c.moe_layer[size_t(layer)])
    return swiglu(w, mlp_names(p, false), c.hidden, c.dense_hidden, x);
  *routed = route(c, w, layer, x, random, seed, first_token);
  at::Tensor out = at::zeros_like(x);
  run_experts(c, w, layer, x, routed->experts, routed->gates, out);
  if (c.shared_hidden > 0) {
    const bool qwen = c.model_type == "qwen2_moe";
    const std::string s = p + (qwen ? "shared_expert." : "shared_experts.");
    at::Tensor shared = swiglu(w, mlp_names(s, false), c.hidden, c.shared_hidden, x);
    if (c.shared_gate)
      shared = shared * at::sigmoid(at::linear(x, w.get(p + "shared_expert_gate.weight",
                                                        {1, c.hidden})));
    out = out + shared;
  }
  return out;
}

}  // namespace unipool::hf
