#include "lock/lock_checkpoint.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "io/json_numbers.h"

namespace unipool {

namespace {

using json = nlohmann::json;

Partition partition_from_ownership(const json& j, const ModelConfig& c, const std::string& file) {
  const int L = c.n_layers, N = c.experts_per_group, K = N / L;
  if (!j.is_array() || int(j.size()) != L)
    throw CheckpointError(file + ": ownership must list " + std::to_string(L) + " layers");
  std::vector<int> owner(size_t(N), -1);
  for (int l = 0; l < L; ++l) {
    const json& row = j[size_t(l)];
    if (!row.is_array() || int(row.size()) != K)
      throw CheckpointError(file + ": ownership of layer " + std::to_string(l) + " must list " +
                            std::to_string(K) + " experts");
    for (const json& e : row) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= N ||
          owner[size_t(e.get<int64_t>())] != -1)
        throw CheckpointError(file + ": ownership names a bad or repeated expert in layer " +
                              std::to_string(l));
      owner[size_t(e.get<int64_t>())] = l;
    }
  }
  Partition p;
  p.n_layers = L;
  p.n_experts = N;
  p.per_layer = K;
  p.owner = owner;
  p.owned.assign(size_t(L), {});
  for (int e = 0; e < N; ++e) p.owned[size_t(owner[size_t(e)])].push_back(e);
  return p;
}

}  // namespace

void save_lock_metadata(const EngineState& s, std::map<std::string, std::string>& model_meta,
                        std::map<std::string, std::string>& state_meta) {
  if (!s.config.lock.enabled) return;
  const LockState& k = s.lock;
  if (!k.partition.empty()) model_meta["ownership"] = json(k.partition.owned).dump();
  json j = {{"history_steps", k.history_steps},
            {"history", k.history},
            {"over_margin", k.over_margin},
            {"stopped", k.stopped},
            {"stop_reason", k.stop_reason}};
  if (std::isfinite(k.reference_loss)) j["reference_loss"] = k.reference_loss;
  if (!k.partition.empty()) {
    j["coverage"] = k.partition.coverage;
    j["deficit"] = k.partition.deficit;
    j["coverage_met"] = k.partition.coverage_met;
    j["rank_sum"] = k.partition.rank_sum;
  }
  state_meta["lock_state"] = j.dump();
}

void load_lock_metadata(EngineState& s, const std::map<std::string, std::string>& model_meta,
                        const std::map<std::string, std::string>* state_meta,
                        const std::string& model_path, const std::string& state_path) {
  const ModelConfig& c = s.config;
  if (!c.lock.enabled) return;
  const auto own = model_meta.find("ownership");
  if (own != model_meta.end()) {
    const json j = json::parse(own->second, nullptr, false);
    if (j.is_discarded()) throw CheckpointError(model_path + ": ownership is not valid JSON");
    s.lock.set_partition(partition_from_ownership(j, c, model_path));
  } else if (c.lock.partition == "random" || s.step >= c.lock.freeze_step) {
    throw CheckpointError(model_path + ": a UniPool-lock model past its freeze (step " +
                          std::to_string(c.lock.freeze_step) + ") needs its \"ownership\"");
  }
  if (!state_meta) return;
  const auto it = state_meta->find("lock_state");
  if (it == state_meta->end()) {
    throw CheckpointError(state_path +
                          ": this UniPool-lock run cannot resume without its lock state "
                          "(\"lock_state\": count history, partition, reference loss)");
  }
  try {
    const json j = json::parse(it->second);
    LockState& k = s.lock;
    const auto steps = json_numbers::whole_array<int64_t>(j.at("history_steps"));
    if (!steps) throw std::runtime_error("history_steps is not a list of whole numbers");
    k.history_steps = *steps;
    k.history.clear();
    for (const json& row : j.at("history")) {
      const auto counts = json_numbers::whole_array<int64_t>(row);
      if (!counts) throw std::runtime_error("history is not lists of whole numbers");
      k.history.push_back(*counts);
    }
    const size_t cells = size_t(c.n_layers) * size_t(c.experts_per_group);
    if (k.history.size() != k.history_steps.size() || k.history.size() > kLockHistory)
      throw std::runtime_error("history and its steps disagree");
    for (const auto& h : k.history)
      if (h.size() != cells) throw std::runtime_error("a history entry is not (L, N)");
    const auto whole = [&](const char* key) {
      const auto v = json_numbers::whole<int64_t>(j.at(key));
      if (!v) throw std::runtime_error(std::string(key) + " is not a whole number");
      return *v;
    };
    const int64_t over_margin = whole("over_margin");
    if (over_margin < 0 || over_margin > (int64_t(1) << 30))
      throw std::runtime_error("over_margin is out of range");
    k.over_margin = int(over_margin);
    k.stopped = j.at("stopped").get<bool>();
    k.stop_reason = j.at("stop_reason").get<std::string>();
    if (j.contains("reference_loss")) k.reference_loss = j.at("reference_loss").get<double>();
    if (!k.partition.empty()) {
      k.partition.coverage = j.at("coverage").get<std::vector<double>>();
      k.partition.deficit = j.at("deficit").get<std::vector<double>>();
      k.partition.coverage_met = j.at("coverage_met").get<bool>();
      k.partition.rank_sum = whole("rank_sum");
    }
  } catch (const std::exception& e) {
    throw CheckpointError(state_path + ": bad lock_state: " + e.what());
  }
}

}  // namespace unipool
