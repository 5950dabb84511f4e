// `unipool train`: trains a preset or a config, with progress lines, a JSON log, Ctrl-C safety.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"
#include "unipool/engine.h"
#include "unipool/run_log.h"

namespace unipool::cli {

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) { g_interrupted = true; }

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int s = int(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ds", s);
  return buf;
}

// A checkpoint written: a watcher opens it in its Checkpoint tab.
std::string saved_record(const std::string& path, int64_t step) {
  return run_log::saved_line({std::filesystem::absolute(path).string(), step});
}

struct TrainArgs {
  std::string preset, config, data, out, resume, log;
  int steps = 0, batch = 0, seq = 0, threads = 1, stop_after = 0, every = 10;
  int nproc = 0, save_every = 0, routing_every = 0;
  double lr = 0, router_init_std = 0, router_weight_decay = 0;
  uint64_t seed = 0;
  bool quiet = false;
  ComputeOptions compute;
  CLI::App* cmd = nullptr;
  bool given(const char* name) const { return cmd->count(name) > 0; }
};

std::unique_ptr<Engine> build_engine(const TrainArgs& a) {
  std::optional<DataSpec> data;
  if (a.given("--data")) data = DataSpec{a.data};
  if (!a.resume.empty()) {
    for (const char* fixed : {"--batch", "--seq", "--seed", "--preset", "--config",
                              "--router-init-std", "--router-weight-decay"}) {
      if (a.given(fixed)) {
        throw CLI::ValidationError(std::string(fixed) + " cannot change when resuming");
      }
    }
    auto engine = Engine::open(a.resume, /*resume=*/true, data, a.threads);
    apply_compute_flags(*engine, a.compute);
    if (a.given("--lr")) engine->set_learning_rate(a.lr);
    if (a.given("--steps")) engine->set_total_steps(a.steps);
    return engine;
  }
  Preset p = preset(a.preset.empty() ? "default" : a.preset);
  if (!a.config.empty()) p.model = config_from_json(read_file_bytes(a.config));
  if (a.given("--seq") && a.seq > p.model.max_seq_len) {
    throw CLI::ValidationError("--seq " + std::to_string(a.seq) +
                               " exceeds the model's max_seq_len " +
                               std::to_string(p.model.max_seq_len));
  }
  if (a.given("--steps")) {
    p.train.total_steps = a.steps;
    // A learned lock schedule follows the run's length (same fractions, on validations).
    if (a.config.empty()) fit_lock_schedule(p.model.lock, a.steps);
  }
  if (a.given("--batch")) p.train.batch = a.batch;
  if (a.given("--seq")) p.train.seq = a.seq;
  if (a.given("--lr")) p.train.lr = a.lr;
  if (a.given("--seed")) p.train.seed = a.seed;
  if (a.given("--router-init-std")) p.train.router_init_std = a.router_init_std;
  if (a.given("--router-weight-decay")) p.train.router_weight_decay = a.router_weight_decay;
  auto engine = std::make_unique<Engine>(p.model, p.train, data.value_or(DataSpec{}), a.threads);
  apply_compute_flags(*engine, a.compute);
  return engine;
}

// Fails before training, not after it, when --out cannot be written.
void check_writable_output(const std::string& out) {
  if (out.empty()) return;
  const std::filesystem::path dir = std::filesystem::absolute(out).parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec) || access(dir.c_str(), W_OK) != 0) {
    throw std::runtime_error("cannot write --out " + out + ": " + dir.string() +
                             " is not a writable directory");
  }
}

int train_loop(const TrainArgs& a, Engine& engine_ref);

int run_train(const TrainArgs& a) {
  if (a.nproc > 0) return launch_local_workers(a.nproc, 60.0);
  check_writable_output(a.out);
  std::unique_ptr<Engine> engine = build_engine(a);
  // Data parallelism when a launcher (torchrun, --nproc, Slurm) set WORLD_SIZE: rank 0 alone
  // prints, logs and saves; the others train their shard.
  try {
    if (const auto d = distributed_from_env()) engine->set_distributed(*d);
  } catch (const DistributedSetupError& e) {
    throw CLI::ValidationError(e.what());  // exit code 2
  }
  const bool leader = engine->rank() == 0;
  TrainArgs local = a;
  if (!leader) {
    local.quiet = true;
    local.log.clear();
    local.out.clear();
  }
  return train_loop(local, *engine);
}

int train_loop(const TrainArgs& a, Engine& engine_ref) {
  Engine* engine = &engine_ref;
  const int64_t total = engine->options().total_steps;
  const int64_t stop = a.stop_after > 0 ? std::min<int64_t>(a.stop_after, total) : total;
  std::ofstream log;
  if (!a.log.empty()) {
    log.open(a.log, std::ios::app);
    if (!log) throw std::runtime_error("cannot open log file " + a.log);
  }
  const ModelConfig& c = engine->config();
  if (!a.quiet) {
    std::cout << "training "
              << (a.resume.empty() ? (a.preset.empty() ? "config" : a.preset) : a.resume) << ": "
              << c.n_layers << " layers, " << c.n_groups() << " pool(s) of " << c.experts_per_group
              << " experts, top-" << c.top_k << ", router " << c.router << ", balance " << c.balance
              << "; batch " << engine->options().batch << " x seq " << engine->options().seq
              << "; data "
              << (engine->data().path.empty() ? "built-in corpus" : engine->data().path)
              << "; from step " << engine->step() << " to " << stop << "; "
              << engine->compute_description() << "\n";
  }
  g_interrupted = false;
  auto previous = std::signal(SIGINT, on_interrupt);
  const auto start = std::chrono::steady_clock::now();
  const int64_t first = engine->step();
  double smoothed_rate = 0;
  int status = 0;
  bool peer_failed = false;
  if (log) {
    run_log::Header header{engine->config(),      engine->options(),    engine->data().path,
                           engine->step(),        engine->world_size(), engine->compute_description()};
    log << run_log::header_line(header) << std::endl;
  }
  while (engine->step() < stop && !g_interrupted) {
    StepMetrics m;
    try {
      m = engine->train_step();
    } catch (const LockStopped& e) {  // resumed after a fail-stop
      std::cerr << "error: " << e.what() << "\n";
      status = 1;
      break;
    } catch (const PeerFailure& e) {
      // The step did not complete everywhere: keep the last saved checkpoint as it is.
      std::cerr << "error: " << e.what() << "; the last saved checkpoint is kept\n";
      status = 1;
      peer_failed = true;
      break;
    }
    smoothed_rate =
        smoothed_rate == 0 ? m.tokens_per_s : 0.9 * smoothed_rate + 0.1 * m.tokens_per_s;
    if (log) {
      const LockStatus lock = engine->lock_status();
      // The routing window every N steps is what `unipool-studio --watch` draws.
      const bool routing = a.routing_every > 0 && m.step % a.routing_every == 0;
      // Flushed: a watcher reads the log as it grows.
      log << run_log::step_line(m, lock.owned.empty() ? nullptr : &lock.owned, routing)
          << std::endl;
    }
    if (!a.out.empty() && a.save_every > 0 && m.step % a.save_every == 0) {
      engine->save(a.out);
      if (log) log << saved_record(a.out, m.step) << std::endl;
    }
    if (!m.applied) {
      // Retrying would redo the same batch and routing (both are functions of the step).
      std::cerr << "error: step " << m.step + 1 << " had a non-finite loss or gradient (loss "
                << m.loss << "); stopping with the last good weights (try a lower --lr)\n";
      status = 1;
      break;
    }
    if (!m.event.empty() && !a.quiet) std::cout << "UniPool-lock: " << m.message << std::endl;
    if (m.event == "fail-stop") {
      std::cerr << "error: " << m.message << "; the model is saved as it is\n";
      status = 1;
      break;
    }
    if (!a.quiet && (m.step % a.every == 0 || m.step == stop || m.step == first + 1)) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta = elapsed / double(m.step - first) * double(stop - m.step);
      char line[256];
      std::snprintf(line, sizeof line,
                    "step %6lld/%lld  loss %.4f  ce %.4f  aux %.4f  lr %.2e  %8.0f tok/s  eta %s",
                    (long long)m.step, (long long)stop, m.loss, m.ce, m.aux, m.lr, smoothed_rate,
                    format_duration(eta).c_str());
      std::cout << line << std::endl;
    }
  }
  if (g_interrupted) std::cout << "interrupted at step " << engine->step() << "\n";
  if (!a.quiet && engine->world_size() > 1) {
    const double total_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("data-parallel: %d ranks, %.1f s of %.1f s in collectives (%.0f%%) on rank 0\n",
                engine->world_size(), engine->communication_seconds(), total_s,
                100.0 * engine->communication_seconds() / std::max(total_s, 1e-9));
  }
  // Save first, with Ctrl-C still caught: a second Ctrl-C must not lose the run.
  if (!a.out.empty() && !peer_failed) {
    engine->save(a.out);
    if (log) log << saved_record(a.out, engine->step()) << std::endl;
    if (!a.quiet) std::cout << "saved " << a.out << " (and " << train_state_path(a.out) << ")\n";
  }
  std::signal(SIGINT, previous);
  // Over ranks the validation is a collective: every rank joins it, rank 0 prints it.
  const bool ranks = engine->world_size() > 1;
  if ((ranks ? !peer_failed : !a.quiet) && !g_interrupted && engine->step() > 0) {
    try {
      const EvalResult v = engine->evaluate_validation(32);
      if (!a.quiet)
        std::printf("validation: ce %.4f over %lld bytes\n", v.loss, (long long)v.n_targets);
    } catch (const std::exception& e) {
      std::cerr << "warning: no validation loss: " << e.what() << "\n";
    }
  }
  return g_interrupted ? 130 : status;
}

}  // namespace

Runner register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model (a preset or a config file)");
  a->cmd = cmd;
  std::string presets;
  for (const auto& n : preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  auto* p = cmd->add_option("--preset", a->preset, "Preset: " + presets)
                ->check(CLI::IsMember(preset_names()));
  auto* c = cmd->add_option("--config", a->config, "Model config JSON (SPEC section 6 keys)")
                ->check(CLI::ExistingFile);
  auto* r = cmd->add_option("--resume", a->resume, "Continue from CKPT and its .train.safetensors")
                ->check(CLI::ExistingFile);
  p->excludes(c);
  r->excludes(p);
  r->excludes(c);
  cmd->add_option("--data", a->data,
                  "Text file or folder of .txt files (default: built-in corpus)");
  cmd->add_option("--steps", a->steps, "Total steps of the schedule")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--batch", a->batch, "Sequences per step")->check(CLI::Range(1, 65536));
  cmd->add_option("--seq", a->seq, "Bytes per sequence")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--lr", a->lr, "Peak learning rate")->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--router-init-std", a->router_init_std,
                  "Routers' weights from N(0, X) (the reference code: 0.01; default 0.02)")
      ->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--router-weight-decay", a->router_weight_decay,
                  "Routers' own AdamW weight decay (the reference code: 0.01; default: the "
                  "run's 0.1)")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--threads", a->threads, "CPU threads")->check(CLI::Range(1, 256));
  add_compute_flags(cmd, &a->compute);
  cmd->add_option("--nproc", a->nproc,
                  "Data-parallel: start N local worker processes (1 compute thread each is "
                  "sensible); launchers such as torchrun set RANK/WORLD_SIZE/MASTER_ADDR/"
                  "MASTER_PORT instead")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--save-every", a->save_every, "Also save --out every N steps")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--log-routing-every", a->routing_every,
                  "Add the step's routing counts to the --log line every N steps (for "
                  "unipool-studio --watch)")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--seed", a->seed, "Seed for weights, data order and random routing")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--out", a->out, "Save the checkpoint here at the end (and on Ctrl-C)");
  cmd->add_option("--log", a->log, "Append one JSON line of metrics per step");
  cmd->add_option("--stop-after", a->stop_after,
                  "Stop at this step (the schedule still spans --steps)")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--every", a->every, "Print a progress line every N steps")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  return [a] { return run_train(*a); };
}

}  // namespace unipool::cli
