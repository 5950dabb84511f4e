#include "lock/lock_schedule.h"

#include <cstdio>
#include <stdexcept>

#include "training/inference.h"

namespace unipool {

namespace {

std::vector<int64_t> counts_of(const RoutingCounts& r) { return r.counts; }  // (L, N), G = L

std::string percent(double v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * v);
  return buf;
}

// Solves the partition from the smoothed history; the validation loss becomes the reference.
std::string freeze(EngineState& s, double valid_loss) {
  const int L = s.config.n_layers, N = s.config.experts_per_group;
  Partition p = solve_partition(s.lock.smoothed(L, N), L, N, s.config.lock.coverage);
  double worst = 1.0;
  for (double c : p.coverage) worst = std::min(worst, c);
  std::string message = "frozen at step " + std::to_string(s.step) + ": " +
                        std::to_string(p.per_layer) +
                        " experts per layer, coverage >= " + percent(worst) + ", reference loss " +
                        std::to_string(valid_loss);
  if (!p.coverage_met)
    message += " (no partition reached " + percent(s.config.lock.coverage) +
               " in every layer: the best total coverage was taken)";
  s.lock.set_partition(std::move(p));
  s.lock.reference_loss = valid_loss;
  s.lock.over_margin = 0;
  return message;
}

}  // namespace

void lock_after_step(EngineState& s, StepMetrics& m) {
  const LockConfig& k = s.config.lock;
  if (!k.enabled) return;
  m.phase = lock_phase(s.config, s.lock, s.step);
  const bool learned = k.partition == "learned";
  if (learned && s.lock.partition.empty()) {
    if (s.step % kValidationInterval != 0 || s.step > k.freeze_step) return;
    // SPEC 8.2: the freeze's counts come from unfaded scores (no partition exists yet).
    const EvalResult v = evaluate_validation(s, kValidationWindows, /*unfaded=*/true);
    s.lock.add_counts(s.step, counts_of(v.routing));
    m.validated = true;
    m.valid_loss = v.loss;
    m.valid_routing = v.routing;
    if (s.step == k.freeze_step) {
      m.event = "freeze";
      m.message = freeze(s, v.loss);
      m.phase = lock_phase(s.config, s.lock, s.step);
    }
    return;
  }
  if (s.step == k.lock_step && learned) {
    m.event = "lock";
    m.message = "locked at step " + std::to_string(s.step) +
                ": each layer routes over its own experts only";
  }
  if (!learned || s.step % kValidationInterval != 0) return;
  const EvalResult v = evaluate_validation(s, kValidationWindows);
  m.validated = true;
  m.valid_loss = v.loss;
  m.valid_routing = v.routing;
  // Fail-stop: above reference + margin on two validations in a row.
  const double line = s.lock.reference_loss + k.loss_margin;
  s.lock.over_margin = v.loss > line ? s.lock.over_margin + 1 : 0;
  if (s.lock.over_margin >= 2) {
    s.lock.stopped = true;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "fail-stop at step %lld: validation loss %.4f stayed above the reference %.4f "
                  "+ %.2f on two validations in a row",
                  static_cast<long long>(s.step), v.loss, s.lock.reference_loss, k.loss_margin);
    s.lock.stop_reason = buf;
    m.event = "fail-stop";
    m.message = buf;
  }
}

std::string freeze_now(EngineState& s) {
  LockConfig& k = s.config.lock;
  if (!k.enabled || k.partition != "learned")
    throw std::invalid_argument("freeze: this run has no learned UniPool-lock partition");
  if (!s.lock.partition.empty())
    throw std::invalid_argument("freeze: the partition was set at step " +
                                std::to_string(k.freeze_step));
  const EvalResult v = evaluate_validation(s, kValidationWindows, /*unfaded=*/true);
  s.lock.add_counts(s.step, counts_of(v.routing));
  const int span = k.lock_step - k.freeze_step;
  ModelConfig c = s.config;
  c.lock.freeze_step = int(std::max<int64_t>(s.step, 1));
  c.lock.lock_step = c.lock.freeze_step + std::max(span, 1);
  validate(c);
  s.config = c;
  freeze(s, v.loss);
  return "freeze";
}

std::string lock_now(EngineState& s) {
  LockConfig& k = s.config.lock;
  if (!k.enabled || s.lock.partition.empty())
    throw std::invalid_argument("lock: freeze first (there is no partition yet)");
  if (s.step >= k.lock_step)
    throw std::invalid_argument("lock: already locked at step " + std::to_string(k.lock_step));
  ModelConfig c = s.config;
  c.lock.lock_step = int(std::max<int64_t>(s.step, c.lock.freeze_step + 1));
  validate(c);
  s.config = c;
  return "lock";
}

}  // namespace unipool
