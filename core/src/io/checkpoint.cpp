// Checkpoints (SPEC section 6): the model file and the training state beside it.
// Reading trusts nothing: the safetensors layer checks the container, this file checks the
// metadata, the config's ranges, every tensor's name, dtype, shape and values.
#include "io/checkpoint.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/checkpoint_pair.h"
#include "io/json_numbers.h"
#include "model/param_names.h"
#include "unipool/random.h"
#include "unipool/safetensors.h"

namespace unipool {

namespace {

constexpr const char* kTrainFormat = "unipool-train";

TensorRecord to_record(const std::string& name, const at::Tensor& t_in) {
  const at::Tensor t = t_in.detach().to(at::kCPU).to(at::kFloat).contiguous();  // any device
  TensorRecord r;
  r.name = name;
  r.dtype = DType::F32;
  r.shape = t.sizes().vec();
  const auto* p = reinterpret_cast<const uint8_t*>(t.data_ptr<float>());
  r.bytes.assign(p, p + t.numel() * sizeof(float));
  return r;
}

TensorRecord to_record_f64(const std::string& name, const std::vector<double>& values) {
  TensorRecord r;
  r.name = name;
  r.dtype = DType::F64;
  r.shape = {int64_t(values.size())};
  const auto* p = reinterpret_cast<const uint8_t*>(values.data());
  r.bytes.assign(p, p + values.size() * sizeof(double));
  return r;
}

// F32 or BF16 record -> float tensor of the expected shape, or CheckpointError.
at::Tensor from_record(const std::string& file, const TensorRecord& r,
                       const std::vector<int64_t>& shape) {
  auto shape_text = [](const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  };
  if (r.shape != shape) {
    throw CheckpointError(file + ": tensor '" + r.name + "' has shape " + shape_text(r.shape) +
                          " but the config needs " + shape_text(shape));
  }
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
  float* dst = t.data_ptr<float>();
  const int64_t n = t.numel();
  if (r.dtype == DType::F32) {
    std::memcpy(dst, r.bytes.data(), size_t(n) * sizeof(float));
  } else if (r.dtype == DType::BF16) {
    for (int64_t i = 0; i < n; ++i) {  // bf16 is the top half of an f32
      uint32_t bits =
          uint32_t(r.bytes[size_t(2 * i)]) | (uint32_t(r.bytes[size_t(2 * i + 1)]) << 8);
      bits <<= 16;
      std::memcpy(dst + i, &bits, sizeof(float));
    }
  } else {
    throw CheckpointError(file + ": tensor '" + r.name + "' has dtype " + dtype_name(r.dtype) +
                          ", expected F32 or BF16");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(dst[i])) {
      throw CheckpointError(file + ": tensor '" + r.name + "' contains NaN or infinite values");
    }
  }
  return t;
}

SafetensorsFile read_file(const std::string& path) {
  try {
    return read_safetensors(path);
  } catch (const FormatError& e) {
    throw CheckpointError(e.what());
  }
}

const std::string& meta(const SafetensorsFile& f, const std::string& file, const std::string& key) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) throw CheckpointError(file + ": metadata has no '" + key + "'");
  return it->second;
}

int64_t parse_step(const std::string& file, const std::string& text) {
  size_t used = 0;
  int64_t step = -1;
  try {
    step = std::stoll(text, &used);
  } catch (const std::exception&) {
  }
  constexpr int64_t kMaxStep = int64_t(1) << 40;  // far beyond any run; step + 1 cannot overflow
  if (used != text.size() || step < 0 || step > kMaxStep) {
    throw CheckpointError(file + ": metadata 'step' is not an integer in [0, 2^40]: '" + text +
                          "'");
  }
  return step;
}

ModelConfig parse_model_metadata(const SafetensorsFile& f, const std::string& file, int64_t* step) {
  const std::string& format = meta(f, file, "format");
  if (format != "unipool") {
    throw NotUniPoolFile(file + ": not a UniPool model file (metadata format is '" + format + "')");
  }
  if (meta(f, file, "format_version") != "1") {
    throw CheckpointError(file + ": unsupported format_version '" +
                          meta(f, file, "format_version") + "'");
  }
  if (meta(f, file, "tokenizer") != "bytes") {
    throw CheckpointError(file + ": unsupported tokenizer '" + meta(f, file, "tokenizer") + "'");
  }
  *step = parse_step(file, meta(f, file, "step"));
  // SPEC section 3 stores router_c so that a checkpoint reads back exactly: never recompute it.
  const auto raw = nlohmann::json::parse(meta(f, file, "config"), nullptr, false);
  if (raw.is_object() && !raw.contains("router_c")) {
    throw CheckpointError(file + ": bad config: router_c is missing");
  }
  try {
    return config_from_json(meta(f, file, "config"));
  } catch (const ConfigError& e) {
    throw CheckpointError(file + ": bad config: " + e.what());
  }
}

ParamStore load_params(const SafetensorsFile& f, const std::string& file, const ModelConfig& c) {
  ParamStore store;
  const auto expected = expected_parameters(c);
  for (const auto& [name, shape] : expected) {
    const TensorRecord* r = f.find(name);
    if (!r) throw CheckpointError(file + ": tensor '" + name + "' is missing");
    store.add(name, from_record(file, *r, shape).requires_grad_(true));
  }
  if (f.tensors.size() != expected.size()) {
    for (const auto& r : f.tensors) {
      if (!store.contains(r.name)) {
        throw CheckpointError(file + ": unexpected tensor '" + r.name + "' for this config");
      }
    }
  }
  return store;
}

// A deterministic id of the model's bytes (so identical saves stay byte-identical).
std::string content_id(const std::vector<TensorRecord>& tensors) {
  uint64_t h = 0x6A09E667F3BCC909ull;
  for (const auto& t : tensors) {
    h = hash_u64(h, std::hash<std::string>{}(t.name), t.bytes.size());
    uint64_t word = 0;
    for (size_t i = 0; i + 8 <= t.bytes.size(); i += 8) {
      std::memcpy(&word, t.bytes.data() + i, 8);
      h = splitmix64(h ^ word);
    }
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

}  // namespace

std::string train_state_path(const std::string& model_path) {
  const std::string suffix = ".safetensors";
  std::string stem = model_path;
  if (stem.size() > suffix.size() &&
      stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0) {
    stem.resize(stem.size() - suffix.size());
  }
  return stem + ".train.safetensors";
}

CheckpointInfo inspect_checkpoint(const std::string& path) {
  recover_checkpoint_pair(path, train_state_path(path));  // a save a killed process left
  const SafetensorsFile f = read_file(path);
  CheckpointInfo info;
  info.config = parse_model_metadata(f, path, &info.step);
  load_params(f, path, info.config);  // validates every tensor against the config
  for (const auto& r : f.tensors) info.tensors.push_back({r.name, dtype_name(r.dtype), r.shape});
  FILE* train = std::fopen(train_state_path(path).c_str(), "rb");
  info.has_train_state = train != nullptr;
  if (train) std::fclose(train);
  return info;
}

void save_checkpoint(const CheckpointRecord& m, const std::string& path) {
  for (size_t i = 0; i < m.params.size(); ++i) {
    // Never replace a good checkpoint with a broken model.
    if (!at::isfinite(m.params.tensor(i).detach()).all().item<bool>()) {
      throw CheckpointError("refusing to save " + path + ": parameter '" + m.params.name(i) +
                            "' has NaN or infinite values");
    }
  }
  std::vector<TensorRecord> model;
  for (size_t i = 0; i < m.params.size(); ++i)
    model.push_back(to_record(m.params.name(i), m.params.tensor(i)));
  std::map<std::string, std::string> model_meta = {
      {"format", "unipool"},         {"format_version", "1"},
      {"config", to_json(m.config)}, {"step", std::to_string(m.step)},
      {"tokenizer", "bytes"},        {"save_id", content_id(model)}};

  std::vector<TensorRecord> state;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const std::string& name = m.params.name(i);
    state.push_back(to_record(param_names::kExpAvgPrefix + name, m.exp_avg.at(name)));
    state.push_back(to_record(param_names::kExpAvgSqPrefix + name, m.exp_avg_sq.at(name)));
  }
  state.push_back(to_record_f64("recent_load", m.recent_load));
  std::string random;
  for (bool r : m.random_layers) random += r ? '1' : '0';
  const nlohmann::json data = {{"path", m.data.path},
                               {"builtin_bytes", m.data.builtin_bytes},
                               {"builtin_seed", m.data.builtin_seed}};
  std::map<std::string, std::string> state_meta = {{"format", kTrainFormat},
                                                   {"format_version", "1"},
                                                   {"step", std::to_string(m.step)},
                                                   {"options", to_json(m.options)},
                                                   {"data", data.dump()},
                                                   {"random_layers", random},
                                                   {"save_id", model_meta.at("save_id")}};
  for (const auto& [k, v] : m.model_meta) model_meta[k] = v;  // UniPool-lock's part
  for (const auto& [k, v] : m.state_meta) state_meta[k] = v;
  // Both files or neither, whenever the process dies (io/checkpoint_pair.h).
  try {
    save_checkpoint_pair({path, model_meta, &model}, {train_state_path(path), state_meta, &state});
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    throw CheckpointError(std::string(e.what()) + " (the previous checkpoint is kept)");
  }
}

CheckpointRecord load_checkpoint(const std::string& path, bool resume) {
  recover_checkpoint_pair(path, train_state_path(path));  // a save a killed process left
  CheckpointRecord m;
  const SafetensorsFile f = read_file(path);
  m.config = parse_model_metadata(f, path, &m.step);
  m.params = load_params(f, path, m.config);
  m.model_meta = f.metadata;
  m.random_layers.assign(size_t(m.config.n_layers), false);
  if (!resume) return m;
  m.has_train_state = true;
  const std::string state_path = train_state_path(path);
  const SafetensorsFile s = read_file(state_path);
  if (meta(s, state_path, "format") != kTrainFormat) {
    throw CheckpointError(state_path + ": not a UniPool training state");
  }
  if (meta(s, state_path, "format_version") != "1") {
    throw CheckpointError(state_path + ": unsupported format_version '" +
                          meta(s, state_path, "format_version") + "'");
  }

  if (parse_step(state_path, meta(s, state_path, "step")) != m.step) {
    throw CheckpointError(state_path + ": its step does not match the model file's");
  }
  // Both files carry the model's content id: a state from another save of the same step is
  // never paired with this model.
  const auto model_id = f.metadata.find("save_id");
  if (model_id == f.metadata.end() || model_id->second != meta(s, state_path, "save_id")) {
    throw CheckpointError(state_path + ": this training state was not saved with " + path);
  }
  try {
    m.options = train_options_from_json(meta(s, state_path, "options"));
    const auto d = nlohmann::json::parse(meta(s, state_path, "data"));
    m.data.path = d.at("path").get<std::string>();
    const auto bytes = json_numbers::whole<int64_t>(d.at("builtin_bytes"));
    const auto seed = json_numbers::whole<uint64_t>(d.at("builtin_seed"));
    if (!bytes || !seed) throw std::runtime_error("builtin_bytes and builtin_seed must be whole numbers");
    m.data.builtin_bytes = *bytes;
    m.data.builtin_seed = *seed;
  } catch (const std::exception& e) {
    throw CheckpointError(state_path + ": bad training options: " + e.what());
  }
  const std::string& random = meta(s, state_path, "random_layers");
  if (random.size() != size_t(m.config.n_layers) ||
      random.find_first_not_of("01") != std::string::npos) {
    throw CheckpointError(state_path + ": bad random_layers '" + random + "'");
  }
  for (size_t l = 0; l < random.size(); ++l) m.random_layers[l] = random[l] == '1';
  for (size_t i = 0; i < m.params.size(); ++i) {
    const std::string& name = m.params.name(i);
    const auto shape = m.params.tensor(i).sizes().vec();
    for (const std::string& prefix : {param_names::kExpAvgPrefix, param_names::kExpAvgSqPrefix}) {
      const TensorRecord* r = s.find(prefix + name);
      if (!r) throw CheckpointError(state_path + ": tensor '" + prefix + name + "' is missing");
      at::Tensor t = from_record(state_path, *r, shape);
      const bool second = prefix == param_names::kExpAvgSqPrefix;
      if (second && (t < 0).any().item<bool>()) {
        throw CheckpointError(state_path + ": tensor '" + prefix + name + "' has negative values");
      }
      (second ? m.exp_avg_sq : m.exp_avg)[name] = t;
    }
  }
  // (L, Mg): the decayed loads of the engine's resize (training/engine_state.h).
  const size_t cells = size_t(m.config.n_layers) * size_t(m.config.experts_per_group);
  const TensorRecord* load = s.find("recent_load");
  if (!load || load->dtype != DType::F64 || load->shape != std::vector<int64_t>{int64_t(cells)}) {
    throw CheckpointError(state_path + ": tensor 'recent_load' is missing or malformed");
  }
  m.recent_load.resize(cells);
  std::memcpy(m.recent_load.data(), load->bytes.data(), load->bytes.size());
  for (double v : m.recent_load) {
    if (!std::isfinite(v) || v < 0) {
      throw CheckpointError(state_path +
                            ": tensor 'recent_load' has negative or non-finite values");
    }
  }
  for (const auto& r : s.tensors) {
    const auto moment_of = [&](const std::string& prefix) {
      return r.name.rfind(prefix, 0) == 0 && m.params.contains(r.name.substr(prefix.size()));
    };
    const bool known = r.name == "recent_load" || moment_of(param_names::kExpAvgPrefix) ||
                       moment_of(param_names::kExpAvgSqPrefix);
    if (!known) throw CheckpointError(state_path + ": unexpected tensor '" + r.name + "'");
  }
  m.state_meta = s.metadata;
  if (m.options.seq > m.config.max_seq_len)
    throw CheckpointError(state_path + ": seq exceeds max_seq_len");
  return m;
}

}  // namespace unipool
