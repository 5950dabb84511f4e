// UniPool-lock's config: its JSON (the "lock" key of the model config), its checks and the
// two schedules of SPEC section 8 (the fade and the entropy warm-up).
#include "lock/lock_config.h"

#include <algorithm>
#include <cmath>

#include "config/json_field.h"

namespace unipool {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw ConfigError("lock: " + message);
}

template <typename T>
T lock_field(const nlohmann::json& j, const char* key) {
  return json_field<T>(j, key, "lock: key");
}

}  // namespace

bool LockConfig::operator==(const LockConfig& o) const {
  return enabled == o.enabled && partition == o.partition && freeze_step == o.freeze_step &&
         lock_step == o.lock_step && entropy_coef == o.entropy_coef &&
         entropy_warmup == o.entropy_warmup && coverage == o.coverage &&
         loss_margin == o.loss_margin;
}

LockConfig lock_schedule(int total_steps, double freeze_fraction, double lock_fraction) {
  const auto on_validation = [](double step) {
    return std::max(1, int(std::lround(step / kValidationInterval))) * kValidationInterval;
  };
  LockConfig k;
  k.enabled = true;
  k.freeze_step = on_validation(freeze_fraction * total_steps);
  k.lock_step =
      std::max(on_validation(lock_fraction * total_steps), k.freeze_step + kValidationInterval);
  k.entropy_warmup = std::max(1, int(std::lround(total_steps / 60.0)));
  return k;
}

void fit_lock_schedule(LockConfig& lock, int total_steps) {
  if (!lock.enabled || lock.partition != "learned") return;
  const LockConfig s = lock_schedule(total_steps);
  lock.freeze_step = s.freeze_step;
  lock.lock_step = s.lock_step;
  lock.entropy_warmup = s.entropy_warmup;
}

const char* lock_phase_name(LockPhase phase) {
  switch (phase) {
    case LockPhase::None:
      return "none";
    case LockPhase::FullPool:
      return "full_pool";
    case LockPhase::Fade:
      return "fade";
    case LockPhase::Locked:
      return "locked";
  }
  return "none";
}

double fade_alpha(const LockConfig& lock, int64_t step) {
  return fade_alpha(lock.freeze_step, lock.lock_step, step);
}

double fade_alpha(int freeze_step, int lock_step, int64_t step) {
  if (step < freeze_step) return 0.0;
  if (step >= lock_step) return 1.0;
  const double span = double(lock_step - freeze_step);
  return (1.0 - std::cos(3.141592653589793 * double(step - freeze_step) / span)) / 2.0;
}

double entropy_coef_at(const LockConfig& lock, int64_t step) {
  if (lock.entropy_warmup <= 0) return lock.entropy_coef;
  return lock.entropy_coef * std::min(double(step) / double(lock.entropy_warmup), 1.0);
}

void validate_lock(const ModelConfig& c) {
  const LockConfig& k = c.lock;
  if (!k.enabled) return;
  require(c.layers_per_group == c.n_layers, "needs one global pool (layers_per_group = n_layers)");
  require(c.router == "norm", "needs the NormRouter (router = \"norm\")");
  require(c.balance == "pool", "needs the pool balance loss (balance = \"pool\")");
  require(c.experts_per_group % c.n_layers == 0,
          "the pool (" + std::to_string(c.experts_per_group) +
              ") must be K x L experts (L = " + std::to_string(c.n_layers) + ")");
  const int K = c.experts_per_group / c.n_layers;
  require(c.top_k <= K, "top_k " + std::to_string(c.top_k) + " exceeds K = " + std::to_string(K));
  require(k.partition == "learned" || k.partition == "random",
          "partition must be \"learned\" or \"random\", got \"" + k.partition + "\"");
  if (k.partition == "random") {
    require(k.freeze_step == 0 && k.lock_step == 0,
            "a random partition is fixed and locked at step 0 (freeze_step = lock_step = 0)");
  } else {
    require(k.freeze_step >= 1, "freeze_step must be >= 1 (a validation step)");
    require(k.lock_step > k.freeze_step, "lock_step must come after freeze_step");
  }
  require(std::isfinite(k.entropy_coef) && k.entropy_coef >= 0 && k.entropy_coef <= 100,
          "entropy_coef must be in [0, 100]");
  require(k.entropy_warmup >= 0, "entropy_warmup must be >= 0");
  require(std::isfinite(k.coverage) && k.coverage > 0 && k.coverage <= 1,
          "coverage must be in (0, 1]");
  require(std::isfinite(k.loss_margin) && k.loss_margin >= 0 && k.loss_margin <= 100,
          "loss_margin must be in [0, 100]");
}

nlohmann::json lock_to_json(const LockConfig& k) {
  return {{"partition", k.partition},           {"freeze_step", k.freeze_step},
          {"lock_step", k.lock_step},           {"entropy_coef", k.entropy_coef},
          {"entropy_warmup", k.entropy_warmup}, {"coverage", k.coverage},
          {"loss_margin", k.loss_margin}};
}

LockConfig lock_from_json(const nlohmann::json& j) {
  require(j.is_object(), "must be a JSON object");
  static const char* const known[] = {"partition",      "freeze_step", "lock_step",  "entropy_coef",
                                      "entropy_warmup", "coverage",    "loss_margin"};
  for (const auto& item : j.items()) {
    require(std::find_if(std::begin(known), std::end(known),
                         [&](const char* k) { return item.key() == k; }) != std::end(known),
            "unknown key '" + item.key() + "'");
  }
  LockConfig k;
  k.enabled = true;
  k.partition = lock_field<std::string>(j, "partition");
  k.freeze_step = lock_field<int>(j, "freeze_step");
  k.lock_step = lock_field<int>(j, "lock_step");
  k.entropy_coef = lock_field<double>(j, "entropy_coef");
  k.entropy_warmup = lock_field<int>(j, "entropy_warmup");
  k.coverage = lock_field<double>(j, "coverage");
  k.loss_margin = lock_field<double>(j, "loss_margin");
  return k;
}

}  // namespace unipool
