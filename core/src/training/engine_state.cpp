// The engine state's own work: its training text, its batches and its routing control.
#include "training/engine_state.h"

#include <filesystem>

#include "unipool/random.h"

namespace unipool {

void EngineState::load_data() {
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

RouteControl EngineState::route_control(uint64_t salt,
                                        const std::optional<std::vector<bool>>& random,
                                        bool with_entropy, bool training, bool unfaded) const {
  RouteControl control;
  control.backend = backend.get();
  const std::vector<bool>& layers = random ? *random : random_layers;
  if (!layers.empty() && layers.size() != size_t(config.n_layers)) {
    throw std::invalid_argument("random layers: expected " + std::to_string(config.n_layers) +
                                " switches, got " + std::to_string(layers.size()));
  }
  control.random_layers.assign(layers.begin(), layers.end());
  control.random_seed = hash_u64(options.seed, salt, uint64_t(step));
  control.with_entropy = with_entropy;
  if (config.lock.enabled) {
    if (!lock.partition.empty() && !unfaded) {
      control.owned = &lock.owned;
      control.lock_alpha = fade_alpha(config.lock, step);
    }
    if (training) {
      control.entropy_coef = entropy_coef_at(config.lock, step);
      control.entropy_target = config.experts_per_group / config.n_layers;
    }
  }
  return control;
}

at::Tensor EngineState::sample_batch(int64_t at_step, std::vector<uint8_t>* domains) const {
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

void EngineState::init_lock() {
  if (!config.lock.enabled || config.lock.partition != "random") return;
  lock.set_partition(random_partition(config.n_layers, config.experts_per_group,
                                      hash_u64(options.seed, kSaltPartition)));
}

void EngineState::reset_recent_load() {
  recent_load.assign(size_t(config.n_layers) * size_t(config.experts_per_group), 0.0);
}

}  // namespace unipool
