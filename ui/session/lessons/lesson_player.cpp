#include "session/lessons/lesson_player.h"

#include <QMetaObject>

#include <QtConcurrent/QtConcurrentRun>

#include "session/run_session.h"
#include "unipool/corpus.h"
#include "unipool/hf_export.h"
#include "unipool/hf_model.h"
#include "unipool/tokenizer.h"
#include "unipool/config.h"
#include "unipool/live_settings.h"

namespace unipool::studio {

namespace {

// The run a lesson step asks for: a preset with the lesson's seed, batch and overrides.
void buildRun(const LessonRun& run, ModelConfig* config, TrainOptions* options) {
  const Preset p = preset(run.preset.toStdString());
  *config = p.model;
  *options = p.train;
  options->seed = run.seed;
  options->batch = run.batch;
  options->seq = run.seq;
  options->total_steps = run.steps;
  options->warmup_steps = std::min(options->warmup_steps, std::max(run.steps / 10, 1));
  if (run.pool) config->experts_per_group = *run.pool;
  if (run.top_k) config->top_k = *run.top_k;
  if (run.aux) config->aux_coef = *run.aux;
  if (run.lr) options->lr = *run.lr;
  config->router_c = 0;  // the worker computes NormRouter's constant for the final shape
}

}  // namespace

LessonPlayer::LessonPlayer(RunSession* session, QObject* parent)
    : QObject(parent), session_(session) {
  connect(session_, &RunSession::updated, this, [this] {
    if (!busy_ || train_target_ < 0) return;
    const int total = int(train_target_ - train_from_);
    const int done = int(std::clamp<int64_t>(session_->state().step - train_from_, 0, total));
    Q_EMIT progress(done, total, tr("Training step %1 of %2").arg(done).arg(total));
  });
  connect(session_, &RunSession::runningChanged, this, [this](bool running) {
    if (running || !busy_ || train_target_ < 0) return;
    // A pause before the target (the teacher pressed Space) keeps the step waiting: Start or
    // resume() carries on, skip() gives up on the rest.
    if (session_->state().step < train_target_) {
      Q_EMIT progress(int(session_->state().step - train_from_), int(train_target_ - train_from_),
                      tr("Paused"));
      return;
    }
    train_target_ = -1;
    continueLater();
  });
  connect(session_, &RunSession::halted, this, [this](const QString& reason) {
    if (busy_) abortStep(reason);
  });
  connect(session_, &RunSession::failed, this, [this](const QString& what, const QString& why) {
    if (busy_) abort_reason_ = tr("%1: %2").arg(what, why);
  });
}

LessonPlayer::~LessonPlayer() {
  probe_watcher_.waitForFinished();  // a probe in flight writes into snapshots_
}

const LessonStep* LessonPlayer::currentStep() const {
  if (index_ < 0 || index_ >= stepCount()) return nullptr;
  return &lesson_.steps[size_t(index_)];
}

void LessonPlayer::load(const Lesson& lesson) {
  stop();
  probe_.reset();
  lesson_ = lesson;
  index_ = -1;
  log_.clear();
  run_.reset();
  has_snapshot_.assign(lesson_.steps.size(), false);
}

void LessonPlayer::start() { restart(); }

void LessonPlayer::restart() {
  if (!hasLesson()) return;
  has_snapshot_.assign(lesson_.steps.size(), false);
  log_.clear();
  playStep(0, false);
}

void LessonPlayer::next() {
  if (!hasLesson()) return;
  if (busy_) skip();
  if (index_ + 1 >= stepCount()) {
    index_ = stepCount();
    Q_EMIT lessonFinished();
    return;
  }
  playStep(index_ + 1, false);
}

void LessonPlayer::back() {
  if (hasLesson() && index_ > 0) playStep(std::min(index_, stepCount()) - 1, true);
}

void LessonPlayer::replayStep() {
  if (hasLesson() && index_ >= 0 && index_ < stepCount()) playStep(index_, true);
}

void LessonPlayer::resume() {
  if (busy_ && train_target_ >= 0 && !session_->isRunning()) session_->post(cmd::RunUntil{train_target_});
}

void LessonPlayer::skip() {
  if (!busy_) return;
  ++generation_;  // the training's end must not run the step's remaining actions
  skipped_ = true;
  train_target_ = -1;
  session_->post(cmd::Pause{});
  finishStep();
}

void LessonPlayer::stop() {
  const bool was = busy_ || index_ >= 0;
  ++generation_;
  if (busy_ && train_target_ >= 0) session_->post(cmd::Pause{});
  busy_ = false;
  train_target_ = -1;
  if (was) Q_EMIT stopped();
}

void LessonPlayer::playStep(int index, bool from_snapshot) {
  ++generation_;
  if (session_->isRunning()) session_->post(cmd::Pause{});
  index_ = index;
  action_ = 0;
  busy_ = true;
  skipped_ = false;
  train_target_ = -1;
  abort_reason_.clear();
  failure_.clear();
  results_.clear();
  const LessonStep& step = lesson_.steps[size_t(index)];
  const QString snapshot = snapshots_.filePath(QStringLiteral("step-%1.safetensors").arg(index));
  const bool creates = !step.actions.empty() && step.actions.front().kind == LessonAction::Create;
  if (from_snapshot && has_snapshot_[size_t(index)]) {
    session_->post(cmd::OpenCheckpoint{snapshot});  // the run as it was when this step first began
  } else if (!creates && session_->state().valid && snapshots_.isValid()) {
    session_->post(cmd::SaveCopy{snapshot});
    has_snapshot_[size_t(index)] = true;
  }
  session_->waitForIdle();
  session_->history().cutWindow();  // this step's routing gets windows of its own
  baseline_ = baselineNow(*session_);
  Q_EMIT stepStarted(index);
  continueLater();
}

void LessonPlayer::continueLater() {
  QMetaObject::invokeMethod(
      this,
      [this, g = generation_] {
        if (g != generation_ || !busy_) return;
        if (!abort_reason_.isEmpty()) return abortStep(abort_reason_);
        runNextAction();
      },
      Qt::QueuedConnection);
}

void LessonPlayer::runNextAction() {
  const LessonStep& step = lesson_.steps[size_t(index_)];
  if (action_ >= step.actions.size()) return finishStep();
  const LessonAction& a = step.actions[action_++];
  if (a.kind == LessonAction::Tab) {
    Q_EMIT tabRequested(a.tab);
    return continueLater();
  }
  if (a.kind == LessonAction::Train) {
    if (!session_->state().can_train) return abortStep(tr("This run cannot train."));
    train_from_ = session_->state().step;
    train_target_ = train_from_ + int64_t(a.value);
    Q_EMIT progress(0, int(a.value), a.describe());
    session_->post(cmd::RunUntil{train_target_});
    return;  // runningChanged(false) at the target continues
  }
  if (a.kind == LessonAction::ProbeExported) return probeExported();
  if (!applyAction(a)) return;
  session_->waitForIdle();  // the worker has done it; its signals are delivered first
  if (a.kind == LessonAction::Create) {
    if (!session_->state().valid) return abortStep(tr("The lesson's run could not be created."));
    baseline_ = baselineNow(*session_);
  }
  continueLater();
}

bool LessonPlayer::applyAction(const LessonAction& a) {
  const int layers = session_->state().config.n_layers;
  switch (a.kind) {
    case LessonAction::Create: {
      if (lesson_.steps[size_t(index_)].run) run_ = lesson_.steps[size_t(index_)].run;
      if (!run_) {
        abortStep(tr("No run to create."));
        return false;
      }
      ModelConfig config;
      TrainOptions options;
      try {
        buildRun(*run_, &config, &options);
      } catch (const std::exception& e) {
        abortStep(tr("The lesson's run is not valid: %1").arg(QString::fromUtf8(e.what())));
        return false;
      }
      // Labelled with the preset: the new-run form then shows which one the lesson chose.
      session_->post(cmd::CreateRun{config, options, DataSpec{}, run_->preset});
      return true;
    }
    case LessonAction::RandomFrom:
      session_->post(RandomLayers::from_layer(layers, int(a.value)));
      return true;
    case LessonAction::RandomOff:
      session_->post(RandomLayers::from_layer(layers, layers));
      return true;
    case LessonAction::Pool:
      session_->post(PoolSize{int(a.value), {}});
      return true;
    case LessonAction::Aux:
      session_->post(AuxCoef{a.value});
      return true;
    case LessonAction::TopK:
      session_->post(TopK{int(a.value)});
      return true;
    case LessonAction::LearningRate:
      session_->post(LearningRate{a.value});
      return true;
    case LessonAction::Freeze:
      session_->post(FreezeNow{});
      return true;
    case LessonAction::Lock:
      session_->post(LockNow{});
      return true;
    case LessonAction::Evaluate:
      session_->post(cmd::EvaluateValidation{});
      return true;
    case LessonAction::Train:
    case LessonAction::Tab:
    case LessonAction::ProbeExported:
      break;
  }
  return true;
}

void LessonPlayer::probeExported() {
  if (!session_->state().valid) return abortStep(tr("No run to export."));
  const QString copy = snapshots_.filePath(QStringLiteral("exported.safetensors"));
  const QString folder = snapshots_.filePath(QStringLiteral("exported"));
  Q_EMIT progress(0, 1, tr("exporting the run as a downloaded model and probing it"));
  disconnect(copy_saved_);
  copy_saved_ = connect(session_, &RunSession::copySaved, this,
                        [this, copy, folder, g = generation_](const QString& path) {
    if (path != copy) return;  // another copy (the Experiments tab's)
    disconnect(copy_saved_);
    if (g != generation_) return;
    // Export (exact for a softmax router: the lesson's run must be vanilla-like), open as a
    // downloaded model, probe on fresh built-in text: all off the window's thread.
    probe_watcher_.setFuture(QtConcurrent::run([copy, folder] {
      ExportProbe out;
      try {
        export_hf(copy.toStdString(), folder.toStdString(), HfExportFormat::Qwen2Moe, false);
        const auto model = HfModel::open(folder.toStdString());
        const auto tokenizer = Tokenizer::from_file((folder + QStringLiteral("/tokenizer.json")).toStdString());
        const std::vector<int32_t> ids =
            tokenizer->encode(generate_builtin_corpus(8192, 20261204).text, false);
        out.result = run_probe(
            [&](const std::vector<bool>& random, uint64_t draw) {
              return model->evaluate(ids, 64, random, 64, draw);
            },
            model->info().moe_layers, "exported run", 64, 2);
      } catch (const std::exception& e) {
        out.error = QString::fromUtf8(e.what());
      }
      return out;
    }));
    connect(&probe_watcher_, &QFutureWatcher<ExportProbe>::finished, this,
            [this, folder, g] {
              if (g != generation_) return;
              const ExportProbe out = probe_watcher_.result();
              if (!out.error.isEmpty()) return abortStep(tr("Export and probe: %1").arg(out.error));
              probe_ = out.result;
              Q_EMIT exportedModelReady(folder);
              continueLater();
            },
            Qt::SingleShotConnection);
  });
  session_->post(cmd::SaveCopy{copy});
}

std::optional<double> LessonPlayer::probeMeasure(const QString& name, QString* why) const {
  if (!probe_) {
    *why = tr("no 'probe exported' has run in this lesson");
    return std::nullopt;
  }
  std::vector<const ProbeRow*> from;
  for (const ProbeRow& row : probe_->rows)
    if (row.kind == "from") from.push_back(&row);
  if (from.empty()) {
    *why = tr("the probe has no rows");
    return std::nullopt;
  }
  // "from the middle MoE layer down" or "every MoE layer".
  const ProbeRow* row = name == QLatin1String("probe_all") ? from.front() : from[from.size() / 2];
  return row->d_loss_mean;
}

void LessonPlayer::finishStep() {
  busy_ = false;
  const LessonStep& step = lesson_.steps[size_t(index_)];
  bool all = true;
  results_.clear();
  for (const LessonExpectation& e : step.expectations) {
    ExpectationResult r;
    r.expectation = e;
    if (skipped_) {
      r.why = tr("skipped");
    } else {
      r.measured = e.measure.startsWith(QLatin1String("probe_"))
                       ? probeMeasure(e.measure, &r.why)
                       : measureRun(e.measure, *session_, baseline_, &r.why);
      r.checked = r.measured.has_value();
      r.passed = r.checked && e.holds(*r.measured);
    }
    all = all && r.passed;
    results_.push_back(r);
    log_.emplace_back(index_, r);
  }
  Q_EMIT stepFinished(index_, all);
  if (auto_advance_) {
    QMetaObject::invokeMethod(
        this,
        [this, g = generation_] {
          if (g == generation_) next();
        },
        Qt::QueuedConnection);
  }
}

void LessonPlayer::abortStep(const QString& reason) {
  ++generation_;
  failure_ = reason;
  train_target_ = -1;
  busy_ = false;
  results_.clear();
  for (const LessonExpectation& e : lesson_.steps[size_t(index_)].expectations) {
    ExpectationResult r;
    r.expectation = e;
    r.why = reason;
    results_.push_back(r);
    log_.emplace_back(index_, r);
  }
  Q_EMIT stepFinished(index_, false);
}

}  // namespace unipool::studio
