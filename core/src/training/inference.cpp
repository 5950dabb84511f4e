// Evaluation (SPEC section 7), per-token routes, generation and weight inspection.
#include "training/inference.h"

#include <algorithm>
#include <cmath>

#include "model/param_names.h"
#include "stats/routing_counts.h"
#include "distributed/communicator.h"
#include "unipool/random.h"

namespace unipool {

namespace {

constexpr int64_t kEvalBatch = 16;  // windows per forward pass

at::Tensor bytes_to_tokens(const std::string& text, size_t begin, size_t count) {
  at::Tensor t = at::empty({int64_t(count)}, at::TensorOptions().dtype(at::kLong));
  int64_t* p = t.data_ptr<int64_t>();
  for (size_t i = 0; i < count; ++i) p[i] = static_cast<unsigned char>(text[begin + i]);
  return t;
}

EvalResult evaluate_impl(const EngineState& m, const std::string& text, const uint8_t* domains,
                         int seq, const std::optional<std::vector<bool>>& random,
                         int64_t max_windows, bool unfaded = false, uint64_t draw = 0,
                         Communicator* comm = nullptr) {
  if (seq < 1 || seq > m.config.max_seq_len) {
    throw std::invalid_argument("sequence length " + std::to_string(seq) + " is outside [1, " +
                                std::to_string(m.config.max_seq_len) + "]");
  }
  // Windows start at 0, S, 2S, ...; each needs S+1 bytes, a shorter tail is dropped.
  const int64_t n = int64_t(text.size());
  int64_t windows = n > seq ? (n - 1) / seq : 0;
  if (max_windows >= 0) windows = std::min(windows, max_windows);
  if (windows == 0) {
    throw std::invalid_argument("text of " + std::to_string(n) + " bytes is too short: " +
                                "evaluation needs at least " + std::to_string(seq + 1));
  }
  torch::NoGradGuard no_grad;
  EvalResult result;
  double ce_sum = 0.0;
  int64_t correct = 0;
  std::vector<uint8_t> batch_domains;
  // Over ranks, each takes every world-th batch of windows (the same batches, seeds and
  // draws as one process) and the sums are reduced; every rank gets the same result.
  const int64_t rank = comm ? comm->rank() : 0, world = comm ? comm->world_size() : 1;
  result.routing = collect_routing(m.config, {}, domains, int(m.train.domain_names.size()));
  for (int64_t w0 = rank * kEvalBatch; w0 < windows; w0 += kEvalBatch * world) {
    const int64_t b = std::min(kEvalBatch, windows - w0);
    std::vector<at::Tensor> rows;
    for (int64_t w = w0; w < w0 + b; ++w)
      rows.push_back(bytes_to_tokens(text, size_t(w * seq), size_t(seq + 1)));
    const at::Tensor batch = at::stack(rows);  // (b, S+1)
    RouteControl control = m.route_control(kSaltEvalRouting, random, true, false, unfaded);
    control.random_seed = hash_u64(control.random_seed, uint64_t(w0));
    if (draw != 0) control.random_seed = hash_u64(control.random_seed, kSaltProbeDraw, draw);
    const ForwardResult out = forward(m.config, m.params, batch.narrow(1, 0, seq), control);
    ce_sum += at::cross_entropy_loss(out.logits.reshape({-1, m.config.vocab_size}),
                                     batch.narrow(1, 1, seq).reshape({-1}), {}, at::Reduction::Sum)
                  .item<double>();
    correct += (out.logits.argmax(-1) == batch.narrow(1, 1, seq)).sum().item<int64_t>();
    if (domains) {
      batch_domains.clear();
      for (int64_t w = w0; w < w0 + b; ++w)
        batch_domains.insert(batch_domains.end(), domains + w * seq, domains + w * seq + seq);
    }
    result.routing.add(collect_routing(m.config, out.routes,
                                       domains ? batch_domains.data() : nullptr,
                                       int(m.train.domain_names.size())));
  }
  if (comm) {
    at::Tensor sums = at::tensor(std::vector<double>{ce_sum, double(correct)},
                                 at::TensorOptions().dtype(at::kDouble));
    comm->sum(sums);
    ce_sum = sums[0].item<double>();
    correct = int64_t(std::llround(sums[1].item<double>()));
    comm->sum(result.routing);
  }
  result.n_targets = windows * seq;
  result.loss = ce_sum / double(result.n_targets);
  result.accuracy = double(correct) / double(result.n_targets);
  return result;
}

}  // namespace

EvalResult evaluate_text(const EngineState& m, const std::string& text, int seq,
                         const std::optional<std::vector<bool>>& random_layers, int64_t max_windows,
                         uint64_t draw) {
  return evaluate_impl(m, text, nullptr, seq, random_layers, max_windows, false, draw);
}

EvalResult evaluate_validation(const EngineState& m, int64_t max_windows, bool unfaded) {
  return evaluate_impl(m, m.valid.text, m.valid.domain.data(), m.options.seq, std::nullopt,
                       max_windows, unfaded, 0, m.comm.get());
}

TokenRoutes token_routes(const EngineState& m, const std::string& text_in) {
  const ModelConfig& c = m.config;
  if (text_in.empty()) throw std::invalid_argument("routes: the text is empty");
  const std::string text = text_in.substr(0, size_t(c.max_seq_len));
  torch::NoGradGuard no_grad;
  const int64_t T = int64_t(text.size());
  const at::Tensor tokens = bytes_to_tokens(text, 0, size_t(T)).unsqueeze(0);  // (1, T)
  const ForwardResult out =
      forward(c, m.params, tokens, m.route_control(kSaltEvalRouting, std::nullopt, false));
  TokenRoutes r;
  r.n_layers = c.n_layers;
  r.top_k = c.top_k;
  r.experts_per_group = c.experts_per_group;
  r.n_tokens = T;
  r.text = text;
  const int L = c.n_layers, k = c.top_k;
  r.experts.resize(size_t(T * L * k));
  r.gates.resize(size_t(T * L * k));
  for (int l = 0; l < L; ++l) {
    const int64_t* ids = out.routes[size_t(l)].local.data_ptr<int64_t>();
    const at::Tensor g = out.routes[size_t(l)].gates.to(at::kFloat).contiguous();
    const float* gp = g.data_ptr<float>();
    for (int64_t t = 0; t < T; ++t) {
      for (int j = 0; j < k; ++j) {
        const size_t dst = (size_t(t) * size_t(L) + size_t(l)) * size_t(k) + size_t(j);
        r.experts[dst] = int32_t(c.group_of_layer(l) * c.experts_per_group + ids[t * k + j]);
        r.gates[dst] = gp[t * k + j];
      }
    }
  }
  const at::Tensor probs = at::softmax(out.logits[0], 1).to(at::kFloat).contiguous();  // (T, V)
  r.next_byte.assign(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
  return r;
}

std::string generate_text(const EngineState& m, const std::string& prompt,
                          const GenerateOptions& o) {
  const ModelConfig& c = m.config;
  if (o.tokens < 0) throw std::invalid_argument("generate: token count must be >= 0");
  if (!(o.temperature >= 0.0) || !std::isfinite(o.temperature))
    throw std::invalid_argument("generate: temperature must be >= 0");
  torch::NoGradGuard no_grad;
  std::string context = prompt.empty() ? std::string("\n") : prompt;
  std::string generated;
  for (int i = 0; i < o.tokens; ++i) {
    const size_t keep = std::min(context.size(), size_t(c.max_seq_len));
    const at::Tensor tokens =
        bytes_to_tokens(context, context.size() - keep, keep).unsqueeze(0);  // (1, S)
    const ForwardResult out =
        forward(c, m.params, tokens, m.route_control(kSaltEvalRouting, std::nullopt, false));
    at::Tensor logits = out.logits[0][int64_t(keep) - 1].to(at::kDouble);  // (V)
    int next = 0;
    if (o.temperature == 0.0) {
      next = int(logits.argmax().item<int64_t>());
    } else {
      logits = logits / o.temperature;
      if (o.top_k > 0 && o.top_k < c.vocab_size) {
        const double kth = std::get<0>(logits.topk(o.top_k)).min().item<double>();
        logits = logits.masked_fill(logits < kth, -INFINITY);
      }
      const at::Tensor p = at::softmax(logits, 0).contiguous();
      const double* pp = p.data_ptr<double>();
      double u = Rng(hash_u64(o.seed, uint64_t(i))).uniform();
      next = c.vocab_size - 1;
      for (int v = 0; v < c.vocab_size; ++v) {
        u -= pp[v];
        if (u < 0.0) {
          next = v;
          break;
        }
      }
    }
    context.push_back(char(next));
    generated.push_back(char(next));
  }
  return generated;
}

std::vector<TensorInfo> tensor_infos(const EngineState& m) {
  std::vector<TensorInfo> out;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const at::Tensor& t = m.params.tensor(i);
    out.push_back({m.params.name(i), "F32", t.sizes().vec()});
  }
  return out;
}

namespace {
at::Tensor flat_experts(const ParamStore& p) {  // (N, 3*h*d)
  torch::NoGradGuard no_grad;
  const at::Tensor& g = p.get(param_names::kPoolGate);
  const int64_t N = g.size(0);
  return at::cat({g.reshape({N, -1}), p.get(param_names::kPoolUp).reshape({N, -1}),
                  p.get(param_names::kPoolDown).reshape({N, -1})},
                 1)
      .to(at::kDouble);
}
}  // namespace

std::vector<double> expert_norms(const EngineState& m) {
  const at::Tensor n = flat_experts(m.params).norm(2, {1}).contiguous();
  return std::vector<double>(n.data_ptr<double>(), n.data_ptr<double>() + n.numel());
}

std::vector<double> expert_similarity(const EngineState& m) {
  const at::Tensor f = flat_experts(m.params);
  const at::Tensor unit = f / (f.norm(2, {1}, true) + 1e-12);
  const at::Tensor sim = at::mm(unit, unit.t()).contiguous();  // (N, N)
  return std::vector<double>(sim.data_ptr<double>(), sim.data_ptr<double>() + sim.numel());
}

}  // namespace unipool
