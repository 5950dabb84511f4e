// The pool-size sweep (the paper's reduced-pool result): UniPool at several pool sizes, the
// vanilla baseline and optionally UniPool-lock, same data, steps and batches per seed. A sweep
// is a folder: sweep.json (the spec), and one folder per run with its checkpoint and a
// metrics.json written last, atomically: a run with metrics.json is done; one without is
// half-written and is redone from scratch, never read.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "unipool/architecture.h"
#include "unipool/experiments.h"

namespace unipool {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Written to a temporary file beside the target, then renamed over it.
void write_text_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

// The model and options of one run of the sweep.
Preset run_preset(const SweepSpec& spec, const SweepRun& run) {
  Preset p = preset(spec.preset);
  ModelConfig& c = p.model;
  if (run.kind == "vanilla") {
    apply_architecture(c, Architecture::Vanilla);
  } else if (run.kind == "lock") {
    apply_architecture(c, Architecture::UniPoolLock);
    fit_lock_schedule(c.lock, spec.steps);
  } else if (run.kind == "lock-random") {
    apply_architecture(c, Architecture::UniPoolLock);
    c.lock.partition = "random";  // the paper's control: a random partition locked at step 0
    c.lock.freeze_step = c.lock.lock_step = 0;
  } else {
    apply_architecture(c, Architecture::UniPool);
    c.experts_per_group = run.experts_per_group;
  }
  if (run.aux_coef >= 0) c.aux_coef = run.aux_coef;
  refresh_router_constant(c);
  validate(c);
  p.train.total_steps = spec.steps;
  p.train.batch = spec.batch;
  p.train.seq = spec.seq;
  p.train.seed = run.seed;
  p.train.warmup_steps = std::min(p.train.warmup_steps, std::max(1, spec.steps / 20));
  p.train.router_init_std = spec.router_init_std;
  p.train.router_weight_decay = spec.router_weight_decay;
  validate(p.train);
  return p;
}

json run_json(const SweepRun& r) {
  json curve = json::array();
  for (const auto& [step, ce] : r.curve) curve.push_back({step, ce});
  return {{"name", r.name},
          {"kind", r.kind},
          {"experts_per_group", r.experts_per_group},
          {"seed", r.seed},
          {"budget", r.budget},
          {"valid_loss", r.valid_loss},
          {"valid_accuracy", r.valid_accuracy},
          {"tokens_per_s", r.tokens_per_s},
          {"seconds", r.seconds},
          {"aux_coef", r.aux_coef},
          {"zero_gate", r.zero_gate},
          {"zero_gate_all", r.zero_gate_all},
          {"curve", curve}};
}

void read_run_metrics(SweepRun& r, const fs::path& file) {
  const json j = json::parse(read_text(file));
  r.valid_loss = j.at("valid_loss").get<double>();
  r.valid_accuracy = j.at("valid_accuracy").get<double>();
  r.tokens_per_s = j.at("tokens_per_s").get<double>();
  r.seconds = j.at("seconds").get<double>();
  // Runs finished before zero-gate shares were recorded have none (NaN: unknown, not 0).
  r.zero_gate = j.value("zero_gate", std::vector<double>{});
  r.zero_gate_all = j.contains("zero_gate_all") ? j["zero_gate_all"].get<double>() : std::nan("");
  r.curve.clear();
  for (const auto& point : j.at("curve"))
    r.curve.push_back({point.at(0).get<int64_t>(), point.at(1).get<double>()});
  r.done = true;
}

// Trains one run to the end and saves it; returns false when cancelled (nothing is saved).
bool train_run(const SweepState& state, SweepRun& run, int index,
               const std::function<bool(const SweepEvent&)>& event) {
  const SweepSpec& spec = state.spec;
  const Preset p = run_preset(spec, run);
  const fs::path dir = fs::path(state.dir) / run.name;
  fs::remove_all(dir);  // whatever a cancelled or killed attempt left
  fs::create_directories(dir);
  Engine engine(p.model, p.train, spec.data, 0);
  std::vector<double> rates;
  double ce_sum = 0;
  int ce_n = 0;
  run.curve.clear();
  const auto start = std::chrono::steady_clock::now();
  while (engine.step() < spec.steps) {
    const StepMetrics m = engine.train_step();
    if (!m.applied)
      throw std::runtime_error("sweep run " + run.name + ": step " + std::to_string(m.step + 1) +
                               " had a non-finite loss");
    rates.push_back(m.tokens_per_s);
    ce_sum += m.ce;
    ++ce_n;
    if (m.step % spec.curve_every == 0 || m.step == spec.steps || m.event == "fail-stop") {
      run.curve.push_back({m.step, ce_sum / ce_n});  // mean CE since the last point
      ce_sum = 0;
      ce_n = 0;
    }
    if (event && !event(SweepEvent{index, m.step, spec.steps, m.ce, false})) return false;
    if (m.event == "fail-stop") break;  // a lock run's own stop: the run ends here
  }
  const EvalResult v = engine.evaluate_validation(kValidationWindows);
  std::nth_element(rates.begin(), rates.begin() + long(rates.size() / 2), rates.end());
  run.tokens_per_s = rates[rates.size() / 2];
  run.valid_loss = v.loss;
  run.valid_accuracy = v.accuracy;
  run.zero_gate.clear();
  int64_t zero = 0;
  for (int64_t z : v.routing.zero_gate) {
    run.zero_gate.push_back(double(z) / double(std::max<int64_t>(1, v.routing.tokens)));
    zero += z;
  }
  run.zero_gate_all = double(zero) / double(std::max<int64_t>(1, v.routing.tokens * v.routing.n_layers));
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  engine.save((dir / "model.safetensors").string());
  write_text_atomic(dir / "metrics.json", run_json(run).dump());  // last: the run is done
  run.done = true;
  return true;
}

}  // namespace

std::string to_json(const SweepSpec& s) {
  json j{{"preset", s.preset},
              {"pool_sizes", s.pool_sizes},
              {"vanilla", s.vanilla},
              {"lock", s.lock},
              {"seeds", s.seeds},
              {"steps", s.steps},
              {"batch", s.batch},
              {"seq", s.seq},
              {"data", s.data.path},
              {"builtin_bytes", s.data.builtin_bytes},
              {"builtin_seed", s.data.builtin_seed},
              {"curve_every", s.curve_every}};
  // Only in grids: a sweep.json written before the key existed reads back the same.
  if (!s.aux_coefs.empty()) j["aux_coefs"] = s.aux_coefs;
  if (s.lock_random) j["lock_random"] = true;
  if (s.router_init_std > 0) j["router_init_std"] = s.router_init_std;
  if (s.router_weight_decay >= 0) j["router_weight_decay"] = s.router_weight_decay;
  return j.dump();
}

SweepSpec sweep_spec_from_json(const std::string& text) {
  const json j = json::parse(text);
  SweepSpec s;
  s.preset = j.at("preset").get<std::string>();
  s.pool_sizes = j.at("pool_sizes").get<std::vector<int>>();
  s.vanilla = j.at("vanilla").get<bool>();
  s.lock = j.at("lock").get<bool>();
  s.seeds = j.at("seeds").get<std::vector<uint64_t>>();
  s.steps = j.at("steps").get<int>();
  s.batch = j.at("batch").get<int>();
  s.seq = j.at("seq").get<int>();
  s.data.path = j.at("data").get<std::string>();
  s.data.builtin_bytes = j.at("builtin_bytes").get<int64_t>();
  s.data.builtin_seed = j.at("builtin_seed").get<uint64_t>();
  s.curve_every = j.at("curve_every").get<int>();
  s.aux_coefs = j.value("aux_coefs", std::vector<double>{});
  s.lock_random = j.value("lock_random", false);
  s.router_init_std = j.value("router_init_std", 0.0);
  s.router_weight_decay = j.value("router_weight_decay", -1.0);
  return s;
}

std::vector<SweepRun> plan_sweep(const SweepSpec& spec_in) {
  SweepSpec spec = spec_in;
  const Preset base = preset(spec.preset);
  const int L = base.model.n_layers, vanilla_experts = kVanillaExpertsPerLayer * L;
  if (spec.pool_sizes.empty()) {  // 25, 41.7, 50, 66.7 and 100% of the vanilla budget
    for (double f : {0.25, 5.0 / 12.0, 0.5, 2.0 / 3.0, 1.0})
      spec.pool_sizes.push_back(std::max(1, int(std::lround(f * vanilla_experts))));
  }
  if (spec.seeds.empty()) throw std::invalid_argument("sweep: at least one seed");
  if (spec.steps < 1) throw std::invalid_argument("sweep: steps must be >= 1");
  for (double a : spec.aux_coefs)
    if (!(a >= 0) || !std::isfinite(a))
      throw std::invalid_argument("sweep: aux coefficients must be finite and >= 0");
  std::vector<SweepRun> runs;
  for (uint64_t seed : spec.seeds) {
    const std::string s = "-s" + std::to_string(seed);
    // One run of `kind` per aux coefficient of the grid ("mg24-a0.01-s1"), or one at the
    // preset's ("mg24-s1").
    auto add = [&](const std::string& stem, const std::string& kind, int mg) {
      if (spec.aux_coefs.empty()) {
        runs.push_back({stem + s, kind, mg, seed});
        return;
      }
      for (double a : spec.aux_coefs) {
        std::ostringstream name;
        name << stem << "-a" << a << s;
        SweepRun r{name.str(), kind, mg, seed};
        r.aux_coef = a;
        runs.push_back(r);
      }
    };
    for (int mg : spec.pool_sizes) add("mg" + std::to_string(mg), "unipool", mg);
    if (spec.vanilla) runs.push_back({"vanilla" + s, "vanilla", kVanillaExpertsPerLayer, seed});
    if (spec.lock) add("lock", "lock", vanilla_experts);
    if (spec.lock_random) add("lock-random", "lock-random", vanilla_experts);
  }
  for (SweepRun& r : runs) {
    const Preset p = run_preset(spec, r);  // checks every run's config before any trains
    r.experts_per_group = p.model.experts_per_group;
    r.budget = count_parameters(p.model).budget_ratio;
  }
  return runs;
}

SweepState open_sweep(const std::string& dir, const SweepSpec& spec) {
  SweepState st;
  st.dir = dir;
  st.spec = spec;
  st.runs = plan_sweep(spec);
  fs::create_directories(dir);
  const fs::path file = fs::path(dir) / "sweep.json";
  if (fs::exists(file)) {
    const SweepSpec saved = sweep_spec_from_json(read_text(file));
    if (to_json(saved) != to_json(spec))
      throw std::runtime_error(dir + " holds a sweep with another spec (" + read_text(file) +
                               "): choose another folder");
  } else {
    write_text_atomic(file, to_json(spec));
  }
  for (SweepRun& r : st.runs) {
    const fs::path metrics = fs::path(dir) / r.name / "metrics.json";
    if (fs::exists(metrics)) read_run_metrics(r, metrics);
  }
  return st;
}

SweepState load_sweep(const std::string& dir) {
  const fs::path file = fs::path(dir) / "sweep.json";
  if (!fs::exists(file)) throw std::runtime_error(dir + " is not a sweep folder (no sweep.json)");
  SweepState st;
  st.dir = dir;
  st.spec = sweep_spec_from_json(read_text(file));
  st.runs = plan_sweep(st.spec);
  for (SweepRun& r : st.runs) {
    const fs::path metrics = fs::path(dir) / r.name / "metrics.json";
    if (fs::exists(metrics)) read_run_metrics(r, metrics);
  }
  return st;
}

void run_sweep(SweepState& state, int parallel,
               const std::function<bool(const SweepEvent&)>& on_event) {
  std::mutex lock;
  std::atomic<bool> cancelled{false};
  std::atomic<size_t> next{0};
  std::string error;
  // Serialises the caller's callback and turns its answer into the shared cancel flag.
  auto event = [&](const SweepEvent& e) {
    if (cancelled) return false;
    std::lock_guard<std::mutex> guard(lock);
    if (on_event && !on_event(e)) cancelled = true;
    return !cancelled.load();
  };
  auto worker = [&] {
    while (!cancelled) {
      const size_t i = next++;
      if (i >= state.runs.size()) return;
      if (state.runs[i].done) continue;
      try {
        // Trained on a copy: other workers' callbacks read `state` (the studio copies it) while
        // this run trains; the finished run is written back under the same lock.
        SweepRun run = state.runs[i];
        if (!train_run(state, run, int(i), event)) return;
        std::lock_guard<std::mutex> guard(lock);
        state.runs[i] = std::move(run);
        if (on_event && !on_event(SweepEvent{int(i), state.spec.steps, state.spec.steps, 0, true}))
          cancelled = true;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> guard(lock);
        if (error.empty()) error = e.what();
        cancelled = true;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::max(1, parallel); ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (!error.empty()) throw std::runtime_error(error);
  if (cancelled) throw Cancelled("sweep cancelled: finished runs are kept, the rest redone");
}

}  // namespace unipool
