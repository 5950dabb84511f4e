#include "session/training_worker.h"

#include <QFileInfo>
#include <QTimer>
#include <algorithm>
#include <cmath>
#include <exception>

namespace unipool::studio {

namespace {

// The window repaints from these updates; 50 ms apart keeps them at most ~20 a second.
constexpr qint64 kMinUpdateIntervalMs = 50;
// Validation every kValidationInterval steps on kValidationWindows windows (unipool/config.h):
// ~1.5% of training time.

}  // namespace

TrainingWorker::TrainingWorker(int compute_threads, QObject* parent)
    : QObject(parent), compute_threads_(compute_threads) {
  since_flush_.start();
}

TrainingWorker::~TrainingWorker() = default;

bool TrainingWorker::requireEngine(const QString& what) {
  if (engine_) return true;
  Q_EMIT failed(what, tr("No model: create a run or open a checkpoint."));
  return false;
}

void TrainingWorker::publishState() {
  RunState s;
  if (engine_) {
    s.valid = true;
    s.config = engine_->config();
    s.options = engine_->options();
    s.step = engine_->step();
    s.random_layers = engine_->random_layers();
    s.domain_names = engine_->domain_names();
    s.data_path = engine_->data().path;
    s.source = source_;
    s.can_train = can_train_;
    s.lock = engine_->lock_status();
    s.compute = QString::fromStdString(engine_->compute_description());
    s.run_serial = run_serial_;
  }
  Q_EMIT runStateChanged(s);
}

void TrainingWorker::note(const QString& kind, const QString& text) {
  ChangeEvent e;
  e.step = engine_ ? engine_->step() : 0;
  e.kind = kind;
  e.text = text;
  Q_EMIT changeApplied(e);
}

void TrainingWorker::createRun(const ModelConfig& config, const TrainOptions& options,
                               const DataSpec& data, const QString& label,
                               const ComputeOptions& compute) {
  setRunning(false);
  pending_ = {};
  try {
    // The form leaves router_c at 0 ("not computed yet"): its Monte Carlo takes up to a second
    // and throws for a top-k above the pool size, so it runs here, off the window's thread, and
    // a bad form reaches the user through failed(), never as an exception in a slot.
    ModelConfig c = config;
    if (c.router == "norm" && c.router_c == 0) {
      c.router_c = 1.0;  // a placeholder, so that validate() names the field that is wrong
      validate(c);
      refresh_router_constant(c);
    }
    auto engine = std::make_unique<Engine>(c, options, data, compute_threads_);
    engine->set_compute(compute);  // a device this machine lacks is refused before the swap
    engine_ = std::move(engine);
    engine_->set_collect_stats(true);
    source_ = label;
    can_train_ = true;
    recipe_ = RunRecipe{label, 0, c, options, data, {}};
    recordable_ = true;
    scheduled_.clear();
    next_scheduled_ = 0;
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("New run"), QString::fromUtf8(e.what()));
    return;
  }
  ++run_serial_;
  Q_EMIT runReplaced();
  publishState();
}

void TrainingWorker::openCheckpoint(const QString& path) {
  setRunning(false);
  pending_ = {};
  const std::string file = path.toStdString();
  bool resume_from_state = false;
  try {
    // A run saved by the studio or the CLI resumes exactly; a bare model file gets the
    // built-in corpus so it can still be trained further.
    resume_from_state = QFileInfo::exists(QString::fromStdString(train_state_path(file)));
    const bool resume = resume_from_state;
    std::optional<DataSpec> data;
    if (!resume) data = DataSpec{};
    auto opened = Engine::open(file, resume, data, compute_threads_);
    engine_ = std::move(opened);
    engine_->set_collect_stats(true);
    source_ = path;
    can_train_ = true;
    recordable_ = false;
    scheduled_.clear();
    next_scheduled_ = 0;
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("Open checkpoint"), QString::fromUtf8(e.what()));
    return;
  }
  ++run_serial_;
  Q_EMIT runReplaced();
  publishState();
  note(ChangeEvent::Opened, tr("opened at step %1").arg(engine_->step()));
  // The Checkpoint tab's report from the model just opened: the file is read once.
  Q_EMIT checkpointOpened(analyseEngine(*engine_, path, resume_from_state));
}

void TrainingWorker::closeRun() {
  setRunning(false);
  pending_ = {};
  engine_.reset();
  can_train_ = false;
  recordable_ = false;
  scheduled_.clear();
  ++run_serial_;
}

void TrainingWorker::setRunning(bool running) {
  if (running == running_) return;
  running_ = running;
  if (!running) {
    stop_at_ = -1;
    flush();
  }
  Q_EMIT runningChanged(running_);
  if (running_) scheduleTick();
}

void TrainingWorker::start() {
  if (!requireEngine(QStringLiteral("Start"))) return;
  setRunning(true);
}

void TrainingWorker::pause() { setRunning(false); }

void TrainingWorker::runUntil(int64_t step) {
  if (!requireEngine(QStringLiteral("Train"))) return;
  if (engine_->step() >= step) {
    flush();
    return;
  }
  stop_at_ = step;
  setRunning(true);
}

void TrainingWorker::stepOnce() {
  if (!requireEngine(QStringLiteral("Step"))) return;
  if (running_) return;
  trainOne();
  flush();
}

void TrainingWorker::scheduleTick() {
  if (tick_scheduled_) return;
  tick_scheduled_ = true;
  // A zero timer posts behind whatever the window queued, so commands interleave with steps.
  QTimer::singleShot(0, this, [this] {
    tick_scheduled_ = false;
    tick();
  });
}

void TrainingWorker::tick() {
  if (!running_ || !engine_) return;
  const StepPoint p = trainOne();
  if (!running_) return;  // trainOne halted the run
  if (stop_at_ >= 0 && p.step >= stop_at_) {
    setRunning(false);
    return;
  }
  if (since_flush_.elapsed() >= kMinUpdateIntervalMs) flush();
  scheduleTick();
}

StepPoint TrainingWorker::trainOne() {
  StepPoint p;
  StepMetrics m;
  applyScheduled();
  try {
    m = engine_->train_step();
  } catch (const std::exception& e) {
    setRunning(false);
    Q_EMIT halted(tr("Training stopped: %1").arg(QString::fromUtf8(e.what())));
    return p;
  }
  p.step = m.step;
  p.loss = m.loss;
  p.ce = m.ce;
  p.aux = m.aux;
  p.lr = m.lr;
  p.tokens_per_s = m.tokens_per_s;
  p.applied = m.applied;
  if (!m.applied) {
    // The engine skipped the update, so the weights are still the last good ones.
    setRunning(false);
    note(ChangeEvent::Halted, tr("non-finite loss"));
    Q_EMIT halted(tr("Step %1 gave a non-finite loss or gradient (loss = %2). Training is "
                     "paused and the model keeps its last good weights. Lower the learning "
                     "rate, then press Start to retry.")
                      .arg(m.step + 1)
                      .arg(m.loss));
    return p;
  }
  pending_.steps.push_back(p);
  pending_.step = m.step;
  pending_.tokens_per_s = m.tokens_per_s;
  if (!m.routing.empty()) {
    if (pending_.routing.empty() ||
        pending_.routing.experts_per_group != m.routing.experts_per_group ||
        pending_.routing.top_k != m.routing.top_k) {
      if (!pending_.routing.empty()) flush();  // a shape change ends the window
      pending_.routing = m.routing;
    } else {
      pending_.routing.add(m.routing);
    }
  }
  if (m.validated) {
    // A lock run validated itself this step (SPEC 8): its figures are the curve's point.
    Q_EMIT validated(ValidationPoint{m.step, m.valid_loss, m.valid_routing});
  } else if (m.step % kValidationInterval == 0) {
    evaluateValidation();
  }
  if (!m.event.empty()) {
    // UniPool-lock's freeze, lock or fail-stop: a marker, the new phase, and for the
    // fail-stop a pause with the reason.
    flush();
    note(QString::fromStdString(m.event), QString::fromStdString(m.event));
    publishState();
    if (m.event == "fail-stop") {
      setRunning(false);
      Q_EMIT halted(tr("UniPool-lock stopped training: %1. The model is kept as it is; save it "
                       "or start a new run.")
                        .arg(QString::fromStdString(m.message)));
    }
  }
  return p;
}

void TrainingWorker::flush() {
  since_flush_.restart();
  if (pending_.steps.empty() && pending_.routing.empty()) return;
  Q_EMIT trainingUpdate(pending_);
  pending_ = {};
}

void TrainingWorker::evaluateValidation() {
  if (!requireEngine(QStringLiteral("Validation"))) return;
  try {
    const EvalResult r = engine_->evaluate_validation(kValidationWindows);
    ValidationPoint v;
    v.step = engine_->step();
    v.ce = r.loss;
    v.routing = r.routing;
    Q_EMIT validated(v);
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("Validation"), QString::fromUtf8(e.what()));
  }
}

void TrainingWorker::apply(const LiveSetting& setting) {
  const QString title = QString::fromStdString(setting_title(setting));
  if (!requireEngine(title)) return;
  AppliedSetting applied;
  try {
    applied = engine_->apply(setting);  // the engine validates; a refused value changes nothing
  } catch (const std::exception& e) {
    Q_EMIT failed(title, QString::fromUtf8(e.what()));
    return;
  }
  if (recordable_) recipe_.timeline.push_back({engine_->step(), setting});
  flush();  // the steps before the change land before its marker
  note(QString::fromStdString(applied.kind), QString::fromStdString(applied.marker));
  publishState();
}

void TrainingWorker::toggleRandomLayer(int layer) {
  if (!requireEngine(tr("Random routing"))) return;
  // From the engine's vector as it is now, not the window's last copy of it: a second click
  // queued before the first one's new state reached the window is not lost.
  const std::vector<bool> now = engine_->random_layers();
  if (layer < 0 || layer >= int(now.size())) {
    Q_EMIT failed(tr("Random routing"), tr("there is no layer %1").arg(layer));
    return;
  }
  apply(RandomLayers::toggled(now, layer));
}

namespace {
// std::visit over a set of lambdas.
template <class... F>
struct Cases : F... {
  using F::operator()...;
};
template <class... F>
Cases(F...) -> Cases<F...>;
}  // namespace

void TrainingWorker::execute(const SessionCommand& command) {
  std::visit(
      Cases{[&](const cmd::CreateRun& c) {
              createRun(c.config, c.options, c.data, c.label, c.compute);
            },
            [&](const cmd::OpenCheckpoint& c) { openCheckpoint(c.path); },
            [&](const cmd::OpenRecipe& c) { openRecipe(c.path); },
            [&](const cmd::Start&) { start(); },
            [&](const cmd::Pause&) { pause(); },
            [&](const cmd::StepOnce&) { stepOnce(); },
            [&](const cmd::RunUntil& c) { runUntil(c.step); },
            [&](const LiveSetting& s) { apply(s); },
            [&](const cmd::ToggleRandomLayer& c) { toggleRandomLayer(c.layer); },
            [&](const cmd::Save& c) { save(c.path); },
            [&](const cmd::SaveCopy& c) { saveCopy(c.path); },
            [&](const cmd::SaveRecipe& c) { saveRecipe(c.path); },
            [&](const cmd::RequestRoutes& c) { requestRoutes(c.text); },
            [&](const cmd::RequestGenerate& c) { requestGenerate(c.prompt, c.options); },
            [&](const cmd::EvaluateValidation&) { evaluateValidation(); }},
      command);
}

void TrainingWorker::save(const QString& path) {
  if (!requireEngine(QStringLiteral("Save"))) return;
  try {
    engine_->save(path.toStdString());
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("Save"), QString::fromUtf8(e.what()));
    return;
  }
  source_ = path;
  Q_EMIT saved(path);
}

void TrainingWorker::saveCopy(const QString& path) {
  if (!requireEngine(QStringLiteral("Experiment"))) return;
  try {
    engine_->save(path.toStdString());
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("Experiment"), QString::fromUtf8(e.what()));
    return;
  }
  Q_EMIT copySaved(path);
}

void TrainingWorker::requestRoutes(const QString& text) {
  if (!requireEngine(QStringLiteral("Token inspector"))) return;
  try {
    Q_EMIT routesReady(engine_->routes(text.toStdString()));
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("Token inspector"), QString::fromUtf8(e.what()));
  }
}

void TrainingWorker::requestGenerate(const QString& prompt, const GenerateOptions& options) {
  if (!requireEngine(QStringLiteral("Generate"))) return;
  generateChunk(prompt, options, std::string(), run_serial_);
}

void TrainingWorker::generateChunk(const QString& prompt, const GenerateOptions& options,
                                   const std::string& done, uint64_t run) {
  // Each forward reads the whole context (no cache): 2,000 bytes of the default preset take
  // about two minutes. One chunk per event lets a pause, a setting or the window closing in
  // between, instead of blocking them until the continuation is complete.
  constexpr int kChunkBytes = 16;
  if (run != run_serial_) return;  // the model it was asked of has been replaced
  GenerateOptions chunk = options;
  chunk.tokens = std::min(kChunkBytes, options.tokens - int(done.size()));
  chunk.seed = options.seed + uint64_t(done.size());  // a fresh stream for each chunk
  std::string out;
  try {
    out = done + engine_->generate(prompt.toStdString() + done, chunk);
  } catch (const std::exception& e) {
    Q_EMIT failed(tr("Generate"), QString::fromUtf8(e.what()));
    return;
  }
  if (int(out.size()) >= options.tokens) {
    Q_EMIT generated(prompt, QString::fromUtf8(out.data(), qsizetype(out.size())));
    return;
  }
  QTimer::singleShot(
      0, this, [this, prompt, options, out, run] { generateChunk(prompt, options, out, run); });
}

}  // namespace unipool::studio
