// The Engine: the public face of the engine's state (training/engine_state.h). Every method
// is defined here and hands its work to the file that does it.
#include "unipool/engine.h"

#include <algorithm>

#include "model/parallel_work.h"
#include "training/engine_checkpoint.h"
#include "training/engine_state.h"
#include "training/inference.h"
#include "training/live_settings.h"
#include "training/resize.h"
#include "training/train_step.h"

namespace unipool {

void set_compute_threads(int threads) { use_engine_threads(threads); }

Engine::Engine(std::unique_ptr<EngineState> state) : state_(std::move(state)) {}

Engine::Engine(const ModelConfig& config, const TrainOptions& options, const DataSpec& data,
               int threads)
    : state_(std::make_unique<EngineState>()) {
  validate(config);
  validate(options);
  if (options.seq > config.max_seq_len) {
    throw ConfigError("sequence length " + std::to_string(options.seq) +
                      " exceeds the model's max_seq_len " + std::to_string(config.max_seq_len));
  }
  if (config.lock.enabled && config.lock.partition == "learned" &&
      config.lock.freeze_step % kValidationInterval != 0) {
    throw ConfigError("lock: freeze_step " + std::to_string(config.lock.freeze_step) +
                      " must be a validation step (a multiple of " +
                      std::to_string(kValidationInterval) + ")");
  }
  if (threads > 0) set_compute_threads(threads);
  EngineState& m = *state_;
  m.config = config;
  m.options = options;
  m.data = data;
  m.random_layers.assign(size_t(config.n_layers), false);
  m.reset_recent_load();
  m.load_data();
  m.params = init_parameters(config, options.seed, at::kFloat, options.router_init_std);
  m.init_lock();
}

std::unique_ptr<Engine> Engine::open(const std::string& path, bool resume,
                                     const std::optional<DataSpec>& data, int threads) {
  if (threads > 0) set_compute_threads(threads);
  return std::unique_ptr<Engine>(new Engine(open_engine_state(path, resume, data)));
}

Engine::~Engine() = default;

const ModelConfig& Engine::config() const { return state_->config; }
const TrainOptions& Engine::options() const { return state_->options; }
const DataSpec& Engine::data() const { return state_->data; }
int64_t Engine::step() const { return state_->step; }
const std::vector<std::string>& Engine::domain_names() const { return state_->train.domain_names; }
const std::vector<bool>& Engine::random_layers() const { return state_->random_layers; }

StepMetrics Engine::train_step() { return unipool::train_step(*state_); }

AppliedSetting Engine::apply(const LiveSetting& setting) {
  return apply_live_setting(*state_, setting);
}
void Engine::set_learning_rate(double peak_lr) { apply(LearningRate{peak_lr}); }
void Engine::set_aux_coef(double aux_coef) { apply(AuxCoef{aux_coef}); }
void Engine::set_top_k(int top_k) { apply(TopK{top_k}); }
void Engine::set_random_layers(const std::vector<bool>& random) { apply(RandomLayers{random}); }
ResizeReport Engine::resize_pool(int new_experts_per_group, const std::vector<int>& drop) {
  return resize_pools(*state_, new_experts_per_group, drop);
}

void Engine::set_total_steps(int total_steps) {
  TrainOptions o = state_->options;
  o.total_steps = total_steps;
  validate(o);
  state_->options = o;
}

void Engine::set_collect_stats(bool on) { state_->collect_stats = on; }

void Engine::set_compute(const ComputeOptions& options) {
  EngineState& m = *state_;
  auto backend = choose_backend(options);  // throws before anything changes
  const at::Device device(options.device == "cuda" ? at::kCUDA : at::kCPU);
  if (m.params.size() > 0 && m.params.tensor(0).device() != device) {
    for (size_t i = 0; i < m.params.size(); ++i)
      m.params.tensor(i) = m.params.tensor(i).detach().to(device).set_requires_grad(true);
    m.optimizer.to(device);
  }
  m.compute = options;
  m.backend = std::move(backend);
}

const ComputeOptions& Engine::compute() const { return state_->compute; }

void Engine::set_distributed(const DistributedConfig& config) {
  EngineState& m = *state_;
  if (config.world_size <= 1) return;
  if (m.options.batch % config.world_size != 0)
    throw DistributedSetupError("the global batch " + std::to_string(m.options.batch) +
                                " does not divide among " + std::to_string(config.world_size) +
                                " ranks: choose --batch as a multiple of the world size");
  m.comm = std::make_shared<Communicator>(config);
}

int Engine::rank() const { return state_->comm ? state_->comm->rank() : 0; }
int Engine::world_size() const { return state_->comm ? state_->comm->world_size() : 1; }
double Engine::communication_seconds() const {
  return state_->comm ? state_->comm->seconds_in_collectives() : 0.0;
}

std::string Engine::compute_description() const {
  const ComputeOptions& c = state_->compute;
  std::string text = c.device == "cuda" ? "CUDA" : "CPU";
  const bool fused = !state_->backend || state_->backend->kind() == BackendKind::FusedCpu;
  text += fused ? ", fused operators" : ", LibTorch operators";
  if (c.bf16) text += ", bf16";
  return text;
}

LockStatus Engine::lock_status() const {
  return unipool::lock_status(state_->config, state_->lock, state_->step);
}

EvalResult Engine::evaluate(const std::string& text, int seq,
                            const std::optional<std::vector<bool>>& random_layers,
                            int64_t max_windows, uint64_t draw) const {
  return evaluate_text(*state_, text, seq, random_layers, max_windows, draw);
}
const std::string& Engine::validation_text() const { return state_->valid.text; }
EvalResult Engine::evaluate_validation(int64_t max_windows) const {
  return unipool::evaluate_validation(*state_, max_windows);
}
TokenRoutes Engine::routes(const std::string& text) const { return token_routes(*state_, text); }
std::string Engine::generate(const std::string& prompt, const GenerateOptions& options) const {
  return generate_text(*state_, prompt, options);
}
std::vector<TensorInfo> Engine::tensors() const { return tensor_infos(*state_); }
std::vector<double> Engine::expert_norms() const { return unipool::expert_norms(*state_); }
std::vector<double> Engine::expert_similarity() const {
  return unipool::expert_similarity(*state_);
}

void Engine::save(const std::string& path) const { save_engine_state(*state_, path); }

}  // namespace unipool
