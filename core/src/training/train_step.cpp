// One optimizer step (SPEC sections 2-4): a batch drawn from the seed and step, forward,
// backward, clipping, AdamW, and the step's routing statistics.
#include "training/train_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "model/param_names.h"
#include "stats/routing_counts.h"
#include "lock/lock_schedule.h"
#include "unipool/schedule.h"

namespace unipool {

StepMetrics train_step(EngineState& m) {
  if (m.train.text.size() < size_t(m.options.seq) + 1) {
    throw DataError("no training text: open the model with a data source, or resume it");
  }
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& c = m.config;
  std::vector<uint8_t> domains;
  at::Tensor batch = m.sample_batch(m.step, m.collect_stats ? &domains : nullptr);  // (B, S+1)
  const int world = m.comm ? m.comm->world_size() : 1;
  int64_t first_token = 0;
  if (m.comm) {
    // This rank's rows of the global batch: the batch is a function of (seed, step), so the
    // ranks together train on exactly what one process would.
    m.comm->heartbeat(m.step);
    const int64_t rows = m.options.batch / world, S = m.options.seq;
    batch = batch.narrow(0, rows * m.comm->rank(), rows);
    first_token = rows * m.comm->rank() * S;
    if (!domains.empty())
      domains = std::vector<uint8_t>(domains.begin() + first_token,
                                     domains.begin() + first_token + rows * S);
  }
  const at::Tensor inputs = batch.narrow(1, 0, m.options.seq);  // (B, S)
  const bool fused = !m.backend || m.backend->fused_optimizer();
  const at::Tensor targets =  // (B, S) where the logits are
      batch.narrow(1, 1, m.options.seq).to(m.params.tensor(0).device());

  if (m.lock.stopped) throw LockStopped(m.lock.stop_reason);
  RouteControl control =
      m.route_control(kSaltTrainRouting, std::nullopt, m.collect_stats, /*training=*/true);
  control.accumulate_pool_grads = true;
  control.first_token = first_token;
  if (m.comm) {
    control.reduce_sum = [&m](at::Tensor& t) { m.comm->sum(t); };
    control.world_size = world;
  }
  ForwardResult out = forward(c, m.params, inputs, control);
  const at::Tensor ce =
      at::cross_entropy_loss(out.logits.view({-1, c.vocab_size}), targets.reshape({-1}));
  at::Tensor loss = ce + out.aux + out.z_loss;
  if (out.entropy_loss.defined()) loss = loss + out.entropy_loss;

  for (size_t i = 0; i < m.params.size(); ++i) m.params.tensor(i).mutable_grad().reset();
  if (m.comm) {
    if (!m.reducer || !m.reducer->hooks(m.params)) {
      m.reducer.reset();
      std::vector<bool> late(m.params.size(), false);  // the pool: complete only at the end
      for (size_t i = 0; i < m.params.size(); ++i) late[i] = param_names::is_pool(m.params.name(i));
      m.reducer = std::make_unique<GradientReducer>(*m.comm, m.params, late);
    }
    m.reducer->begin_step();
  }
  loss.backward();  // over ranks, the reducer starts summing gradients as they come

  StepMetrics metrics;
  metrics.loss = loss.item<double>();
  metrics.ce = ce.item<double>();
  metrics.aux = out.aux.item<double>();
  metrics.z_loss = out.z_loss.item<double>();
  if (m.comm) {
    // The mean over ranks of the ranks' means (equal shards): the global batch's gradient and
    // losses. The pool's gradient, already summed over its layers, is one tensor here.
    m.reducer->finish();
    at::Tensor losses =
        at::tensor(std::vector<double>{metrics.loss, metrics.ce, metrics.aux, metrics.z_loss},
                   at::TensorOptions().dtype(at::kDouble));
    m.comm->sum(losses);
    losses.div_(double(world));
    metrics.loss = losses[0].item<double>();
    metrics.ce = losses[1].item<double>();
    metrics.aux = losses[2].item<double>();
    metrics.z_loss = losses[3].item<double>();
  }
  metrics.entropy_loss = out.entropy_loss.defined() ? out.entropy_loss.item<double>() : 0.0;
  metrics.grad_norm = fused ? clip_grad_norm(m.params, m.options.grad_clip)
                            : clip_grad_norm_generic(m.params, m.options.grad_clip);
  metrics.lr = learning_rate_at(m.options, m.step);
  metrics.applied = std::isfinite(metrics.loss) && std::isfinite(metrics.grad_norm);
  if (metrics.applied) {
    // A non-finite step leaves weights, moments and the step counter as they were.
    AdamWSettings s{metrics.lr, m.options.beta1, m.options.beta2, m.options.adam_eps,
                    m.options.weight_decay, m.options.router_weight_decay};
    if (fused)
      m.optimizer.update(m.params, s, m.step + 1);
    else
      m.optimizer.update_generic(m.params, s, m.step + 1);
    ++m.step;
    const int Mg = c.experts_per_group;
    for (int l = 0; l < c.n_layers; ++l) {
      for (int i = 0; i < Mg; ++i) {
        double& r = m.recent_load[size_t(l * Mg + i)];
        r = 0.9 * r + double(out.routes[size_t(l)].counts[size_t(i)]);
      }
    }
  }
  for (size_t i = 0; i < m.params.size(); ++i) m.params.tensor(i).mutable_grad().reset();
  if (m.collect_stats) {
    const auto stats_start = std::chrono::steady_clock::now();
    metrics.routing =
        collect_routing(c, out.routes, domains.data(), int(m.train.domain_names.size()));
    if (m.comm) m.comm->sum(metrics.routing);  // the heatmap of the global batch
    metrics.stats_seconds =
        out.stats_seconds +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - stats_start).count();
  }
  metrics.step = m.step;
  if (metrics.applied) lock_after_step(m, metrics);
  metrics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The global batch's tokens: every rank trains its share in the same time.
  metrics.tokens_per_s = double(inputs.numel() * world) / std::max(1e-9, metrics.seconds);
  return metrics;
}

}  // namespace unipool
