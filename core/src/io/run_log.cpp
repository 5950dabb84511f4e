// The JSONL run log (unipool/run_log.h; docs/run-log.md): writers for the CLI, one parser for
// the studio's watcher, the sweep and the tests.
#include "unipool/run_log.h"

#include <nlohmann/json.hpp>
#include <type_traits>

#include "io/json_numbers.h"
#include "unipool/lock.h"

namespace unipool::run_log {

using nlohmann::json;

namespace {

// A window's raw routing counts (SPEC section 5): a watcher rebuilds the heatmap from them.
json routing_json(const RoutingCounts& c) {
  return {{"n_layers", c.n_layers},
          {"layers_per_group", c.layers_per_group},
          {"experts_per_group", c.experts_per_group},
          {"top_k", c.top_k},
          {"n_domains", c.n_domains},
          {"tokens", c.tokens},
          {"counts", c.counts},
          {"gate_sum", c.gate_sum},
          {"entropy_sum", c.entropy_sum},
          {"reuse_sum", c.reuse_sum},
          {"zero_gate", c.zero_gate},
          {"domain_counts", c.domain_counts},
          {"domain_tokens", c.domain_tokens}};
}

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

template <class T>
T get(const json& j, const char* key) {
  if (!j.contains(key)) throw Error(std::string("no \"") + key + "\"");
  const json& v = j.at(key);
  const auto wrong = [key] { return Error(std::string("\"") + key + "\" has the wrong type"); };
  // Integers through json_numbers: a float where an integer belongs is refused, not cast.
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (const auto x = json_numbers::whole<T>(v)) return *x;
    throw wrong();
  } else if constexpr (is_vector<T>::value) {
    if constexpr (std::is_integral_v<typename T::value_type>) {
      if (auto x = json_numbers::whole_array<typename T::value_type>(v)) return std::move(*x);
      throw wrong();
    }
  }
  try {
    return v.get<T>();
  } catch (const json::exception&) {
    throw wrong();
  }
}

template <class T>
T get_or(const json& j, const char* key, T fallback) {
  return j.contains(key) ? get<T>(j, key) : fallback;
}

// An optional array of `size` numbers (absent: zeros; present with another length: an error).
template <class T>
std::vector<T> sized(const json& j, const char* key, size_t size) {
  if (!j.contains(key)) return std::vector<T>(size, T(0));
  std::vector<T> v = get<std::vector<T>>(j, key);
  if (v.size() != size)
    throw Error(std::string("routing \"") + key + "\" has " + std::to_string(v.size()) +
                " values, not " + std::to_string(size));
  return v;
}

RoutingCounts routing_from_json(const json& o) {
  const int L = get<int>(o, "n_layers"), per = get<int>(o, "layers_per_group");
  const int Mg = get<int>(o, "experts_per_group"), k = get<int>(o, "top_k");
  const int D = get_or<int>(o, "n_domains", 0);
  // Bounds before anything is allocated: a hostile line must not ask for gigabytes.
  if (L < 1 || L > 4096 || per < 1 || L % per != 0 || Mg < 1 || Mg > (1 << 20) || k < 1 ||
      k > Mg || D < 0 || D > 4096 || int64_t(L) * Mg > (int64_t(1) << 26) ||
      int64_t(D) * L * Mg > (int64_t(1) << 26))
    throw Error("routing window has an impossible shape");
  RoutingCounts c(L, per, Mg, k, D);
  const size_t cells = size_t(L) * size_t(Mg);
  c.tokens = get<int64_t>(o, "tokens");
  if (!o.contains("counts")) throw Error("routing window has no \"counts\"");
  c.counts = sized<int64_t>(o, "counts", cells);
  c.gate_sum = sized<double>(o, "gate_sum", cells);
  c.entropy_sum = sized<double>(o, "entropy_sum", size_t(L));
  c.reuse_sum = get_or<double>(o, "reuse_sum", 0.0);
  c.zero_gate = sized<int64_t>(o, "zero_gate", size_t(L));
  c.domain_counts = sized<int64_t>(o, "domain_counts", size_t(D) * cells);
  c.domain_tokens = sized<int64_t>(o, "domain_tokens", size_t(D));
  return c;
}

Header header_from_json(const json& run) {
  Header h;
  if (!run.is_object() || !run.contains("config") || !run.at("config").is_object())
    throw Error("the run header has no \"config\" object");
  try {
    h.config = config_from_json(run.at("config").dump());
    h.train = train_options_from_json(get<json>(run, "train").dump());
  } catch (const ConfigError& e) {
    throw Error(std::string("the run header is not valid: ") + e.what());
  }
  h.data = get_or<std::string>(run, "data", "");
  h.from_step = get_or<int64_t>(run, "from_step", 0);
  h.world_size = get_or<int>(run, "world_size", 1);
  h.compute = get_or<std::string>(run, "compute", "");
  return h;
}

Step step_from_json(const json& o) {
  Step s;
  s.step = get<int64_t>(o, "step");
  s.loss = get<double>(o, "loss");
  s.ce = get<double>(o, "ce");
  s.aux = get_or<double>(o, "aux", 0.0);
  s.z_loss = get_or<double>(o, "z_loss", 0.0);
  s.lr = get_or<double>(o, "lr", 0.0);
  s.grad_norm = get_or<double>(o, "grad_norm", 0.0);
  s.applied = get_or<bool>(o, "applied", true);
  s.seconds = get_or<double>(o, "seconds", 0.0);
  s.tokens_per_s = get_or<double>(o, "tokens_per_s", 0.0);
  s.has_valid_loss = o.contains("valid_loss");
  s.valid_loss = get_or<double>(o, "valid_loss", 0.0);
  s.phase = get_or<std::string>(o, "phase", "");
  s.entropy_loss = get_or<double>(o, "entropy_loss", 0.0);
  s.event = get_or<std::string>(o, "event", "");
  s.message = get_or<std::string>(o, "message", "");
  if (o.contains("routing")) s.routing = routing_from_json(o.at("routing"));
  return s;
}

}  // namespace

std::string header_line(const Header& h) {
  return json{{"run",
               {{"config", json::parse(to_json(h.config))},
                {"train", json::parse(to_json(h.train))},
                {"data", h.data},
                {"from_step", h.from_step},
                {"world_size", h.world_size},
                {"compute", h.compute}}}}
      .dump();
}

std::string step_line(const StepMetrics& m, const std::vector<std::vector<int>>* owned,
                      bool with_routing) {
  json j = {{"step", m.step},
            {"loss", m.loss},
            {"ce", m.ce},
            {"aux", m.aux},
            {"z_loss", m.z_loss},
            {"lr", m.lr},
            {"grad_norm", m.grad_norm},
            {"applied", m.applied},
            {"seconds", m.seconds},
            {"tokens_per_s", m.tokens_per_s}};
  if (!m.routing.empty()) {
    const RoutingSummary s = summarize(m.routing);
    j["imbalance"] = s.imbalance;
    j["cv"] = s.cv;
    j["load_entropy"] = s.load_entropy;
    j["dead_experts"] = s.dead_experts;
    j["router_entropy"] = s.router_entropy;
    j["reuse"] = s.reuse;
    j["zero_gate"] = m.routing.zero_gate;
    j["diagnostics"] = json::parse(to_json(diagnose(m.routing, owned)));
  }
  if (m.phase != LockPhase::None) {
    j["phase"] = lock_phase_name(m.phase);
    j["entropy_loss"] = m.entropy_loss;
  }
  if (m.validated) j["valid_loss"] = m.valid_loss;
  if (!m.event.empty()) {
    j["event"] = m.event;
    j["message"] = m.message;
  }
  if (with_routing && !m.routing.empty()) j["routing"] = routing_json(m.routing);
  return j.dump();
}

std::string saved_line(const Saved& s) {
  return json{{"saved", s.path}, {"at_step", s.at_step}}.dump();
}

Record parse_line(const std::string& line) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception&) {
    throw Error("not JSON (a torn or foreign line)");
  }
  if (!j.is_object()) throw Error("not a JSON object");
  Record r;
  if (j.contains("run")) {
    r.kind = Record::Kind::Header;
    r.header = header_from_json(j.at("run"));
  } else if (j.contains("saved")) {
    r.kind = Record::Kind::Saved;
    r.saved.path = get<std::string>(j, "saved");
    r.saved.at_step = get_or<int64_t>(j, "at_step", 0);
  } else if (j.contains("step")) {
    r.kind = Record::Kind::Step;
    r.step = step_from_json(j);
  } else {
    throw Error("neither a run header, a step nor a saved record");
  }
  return r;
}

}  // namespace unipool::run_log
