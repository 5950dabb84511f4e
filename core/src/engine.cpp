// Engine construction, the training step and the settings changed between steps.
#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "engine_impl.h"
#include "rng.h"

namespace unipool {

void set_compute_threads(int threads) {
  // A training step frees and reallocates the same few hundred MiB of activations. glibc
  // serves blocks this large with fresh mmaps, so every step paid page faults and kernel
  // page zeroing (~6% of a step); keeping them in the heap lets steps reuse warm memory.
  static const bool heap_tuned = [] {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)heap_tuned;
  threads = std::max(1, threads);
  // GEMMs are most of a step and OpenBLAS threads them with its own pthread pool. LibTorch's
  // OpenMP pool spin-waits between parallel regions, and the two pools fighting over the same
  // cores made 2 threads 4x slower than 1 (measured). So only OpenBLAS gets the threads; our
  // elementwise loops stay on the calling thread.
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    at::set_num_threads(1);
    fn(threads);
  } else {
    at::set_num_threads(threads);  // another BLAS: let LibTorch share the threads out
  }
}

void Engine::Impl::load_data() {
  constexpr int64_t kMaxBuiltinBytes = int64_t(1) << 30;
  if (data.path.empty() && (data.builtin_bytes < 1 || data.builtin_bytes > kMaxBuiltinBytes)) {
    throw DataError("builtin_bytes must be in [1, " + std::to_string(kMaxBuiltinBytes) + "], got " +
                    std::to_string(data.builtin_bytes));
  }
  // Stored absolute, so a resumed run finds its text from any working directory.
  if (!data.path.empty())
    data.path = std::filesystem::absolute(data.path).lexically_normal().string();
  LabelledText all = data.path.empty()
                         ? generate_builtin_corpus(size_t(data.builtin_bytes), data.builtin_seed)
                         : load_text_path(data.path);
  const size_t min_bytes = size_t(options.seq) + 1;
  auto split = split_train_valid(all, options.valid_fraction, min_bytes);
  train = std::move(split.train);
  valid = std::move(split.valid);
}

RouteControl Engine::Impl::route_control(uint64_t salt,
                                         const std::optional<std::vector<bool>>& random,
                                         bool with_entropy) const {
  RouteControl control;
  const std::vector<bool>& layers = random ? *random : random_layers;
  if (!layers.empty() && layers.size() != size_t(config.n_layers)) {
    throw std::invalid_argument("random layers: expected " + std::to_string(config.n_layers) +
                                " switches, got " + std::to_string(layers.size()));
  }
  control.random_layers.assign(layers.begin(), layers.end());
  control.random_seed = hash_u64(options.seed, salt, uint64_t(step));
  control.with_entropy = with_entropy;
  return control;
}

at::Tensor Engine::Impl::sample_batch(int64_t at_step, std::vector<uint8_t>* domains) const {
  const int64_t B = options.batch, S1 = options.seq + 1;
  const int64_t span = int64_t(train.text.size()) - S1 + 1;  // number of possible starts
  at::Tensor batch = at::empty({B, S1}, at::TensorOptions().dtype(at::kLong));
  int64_t* bp = batch.data_ptr<int64_t>();
  if (domains) domains->resize(size_t(B * (S1 - 1)));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = int64_t(
        hash_u64(options.seed, kSaltBatch, uint64_t(at_step), uint64_t(b)) % uint64_t(span));
    for (int64_t j = 0; j < S1; ++j) {
      bp[b * S1 + j] = static_cast<unsigned char>(train.text[size_t(start + j)]);
      if (domains && j < S1 - 1)
        (*domains)[size_t(b * (S1 - 1) + j)] = train.domain[size_t(start + j)];
    }
  }
  return batch;
}

void Engine::Impl::reset_recent_load() {
  recent_load.assign(size_t(config.n_layers) * size_t(config.experts_per_group), 0.0);
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::Engine(const ModelConfig& config, const TrainOptions& options, const DataSpec& data,
               int threads)
    : impl_(std::make_unique<Impl>()) {
  validate(config);
  validate(options);
  if (options.seq > config.max_seq_len) {
    throw ConfigError("sequence length " + std::to_string(options.seq) +
                      " exceeds the model's max_seq_len " + std::to_string(config.max_seq_len));
  }
  if (threads > 0) set_compute_threads(threads);
  Impl& m = *impl_;
  m.config = config;
  m.options = options;
  m.data = data;
  m.random_layers.assign(size_t(config.n_layers), false);
  m.reset_recent_load();
  m.load_data();
  m.params = init_parameters(config, options.seed, at::kFloat);
}

Engine::~Engine() = default;

const ModelConfig& Engine::config() const { return impl_->config; }
const TrainOptions& Engine::options() const { return impl_->options; }
const DataSpec& Engine::data() const { return impl_->data; }
int64_t Engine::step() const { return impl_->step; }
const std::vector<std::string>& Engine::domain_names() const { return impl_->train.domain_names; }
const std::vector<bool>& Engine::random_layers() const { return impl_->random_layers; }

StepMetrics Engine::train_step() {
  Impl& m = *impl_;
  if (m.train.text.size() < size_t(m.options.seq) + 1) {
    throw DataError("no training text: open the model with a data source, or resume it");
  }
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& c = m.config;
  std::vector<uint8_t> domains;
  const at::Tensor batch = m.sample_batch(m.step, m.collect_stats ? &domains : nullptr);
  const at::Tensor inputs = batch.narrow(1, 0, m.options.seq);   // (B, S)
  const at::Tensor targets = batch.narrow(1, 1, m.options.seq);  // (B, S)

  RouteControl control = m.route_control(kSaltTrainRouting, std::nullopt, m.collect_stats);
  control.accumulate_pool_grads = true;
  ForwardResult out = forward(c, m.params, inputs, control);
  const at::Tensor ce =
      at::cross_entropy_loss(out.logits.view({-1, c.vocab_size}), targets.reshape({-1}));
  const at::Tensor loss = ce + out.aux + out.z_loss;

  for (size_t i = 0; i < m.params.size(); ++i) m.params.tensor(i).mutable_grad().reset();
  loss.backward();

  StepMetrics metrics;
  metrics.loss = loss.item<double>();
  metrics.ce = ce.item<double>();
  metrics.aux = out.aux.item<double>();
  metrics.z_loss = out.z_loss.item<double>();
  metrics.grad_norm = clip_grad_norm(m.params, m.options.grad_clip);
  metrics.lr = learning_rate_at(m.options, m.step);
  metrics.applied = std::isfinite(metrics.loss) && std::isfinite(metrics.grad_norm);
  if (metrics.applied) {
    // A non-finite step leaves weights, moments and the step counter as they were.
    AdamWSettings s{metrics.lr, m.options.beta1, m.options.beta2, m.options.adam_eps,
                    m.options.weight_decay};
    m.optimizer.update(m.params, s, m.step + 1);
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
    metrics.stats_seconds =
        out.stats_seconds +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - stats_start).count();
  }
  metrics.step = m.step;
  metrics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.tokens_per_s = double(inputs.numel()) / std::max(1e-9, metrics.seconds);
  return metrics;
}

void Engine::set_learning_rate(double peak_lr) {
  TrainOptions o = impl_->options;
  o.lr = peak_lr;
  validate(o);
  impl_->options = o;
}

void Engine::set_total_steps(int total_steps) {
  TrainOptions o = impl_->options;
  o.total_steps = total_steps;
  validate(o);
  impl_->options = o;
}

void Engine::set_aux_coef(double aux_coef) {
  ModelConfig c = impl_->config;
  c.aux_coef = aux_coef;
  validate(c);
  impl_->config = c;
}

void Engine::set_top_k(int top_k) {
  ModelConfig c = impl_->config;
  c.top_k = top_k;
  validate(c);  // the range check names top_k; router_c is still the old, valid one here
  refresh_router_constant(c);
  impl_->config = c;
}

void Engine::set_random_layers(const std::vector<bool>& random) {
  if (random.size() != size_t(impl_->config.n_layers)) {
    throw std::invalid_argument("set_random_layers: expected " +
                                std::to_string(impl_->config.n_layers) + " switches");
  }
  impl_->random_layers = random;
}

void Engine::set_collect_stats(bool on) { impl_->collect_stats = on; }

}  // namespace unipool
