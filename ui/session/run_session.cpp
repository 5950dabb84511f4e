#include "session/run_session.h"

#include <QCoreApplication>
#include <QMetaObject>

#include "session/run_log_follower.h"
#include "session/training_worker.h"

namespace unipool::studio {

namespace {

void register_types() {
  static const bool done = [] {
    qRegisterMetaType<StepPoint>();
    qRegisterMetaType<ChangeEvent>();
    qRegisterMetaType<TrainingUpdate>();
    qRegisterMetaType<RunState>();
    qRegisterMetaType<ValidationPoint>();
    qRegisterMetaType<TokenRoutes>();
    qRegisterMetaType<CheckpointReport>();
    return true;
  }();
  (void)done;
}

}  // namespace

RunSession::RunSession(const QString& name, int compute_threads, QObject* parent)
    : QObject(parent), name_(name), worker_(new TrainingWorker(compute_threads)) {
  register_types();
  thread_.setObjectName(QStringLiteral("training-%1").arg(name));
  worker_->moveToThread(&thread_);

  // Worker signals arrive queued on this (the window's) thread, in the order they were sent.
  // The history is cleared when the worker says the new run is in place, not when it is asked
  // for: the old run's last update (sent as it pauses) arrives before this, and a run that
  // fails to open leaves the current one and its history alone.
  connect(worker_, &TrainingWorker::runReplaced, this, [this] {
    tokens_per_s_ = 0;
    history_.clear();
  });
  connect(worker_, &TrainingWorker::runStateChanged, this, &RunSession::onState);
  connect(worker_, &TrainingWorker::trainingUpdate, this, &RunSession::onUpdate);
  connect(worker_, &TrainingWorker::validated, &history_, &RunHistory::addValidation);
  connect(worker_, &TrainingWorker::changeApplied, &history_, &RunHistory::addChange);
  connect(worker_, &TrainingWorker::runningChanged, this, [this](bool running) {
    running_ = running;
    Q_EMIT runningChanged(running);
  });
  connect(worker_, &TrainingWorker::halted, this, &RunSession::halted);
  connect(worker_, &TrainingWorker::failed, this, &RunSession::failed);
  connect(worker_, &TrainingWorker::saved, this, &RunSession::saved);
  connect(worker_, &TrainingWorker::copySaved, this, &RunSession::copySaved);
  connect(worker_, &TrainingWorker::recipeSaved, this, &RunSession::recipeSaved);
  connect(worker_, &TrainingWorker::routesReady, this, &RunSession::routesReady);
  connect(worker_, &TrainingWorker::generated, this, &RunSession::generated);
  connect(worker_, &TrainingWorker::checkpointOpened, this, &RunSession::checkpointOpened);
  thread_.start();

  // A watched run (its log) reaches the same history and state as a hosted one.
  follower_ = new RunLogFollower(this);
  connect(follower_, &RunLogFollower::started, this, [this] {
    tokens_per_s_ = 0;
    history_.clear();
  });
  connect(follower_, &RunLogFollower::stateChanged, this, &RunSession::onState);
  connect(follower_, &RunLogFollower::trainingUpdate, this, &RunSession::onUpdate);
  connect(follower_, &RunLogFollower::validated, &history_, &RunHistory::addValidation);
  connect(follower_, &RunLogFollower::checkpointSaved, this, &RunSession::watchedCheckpoint);
  connect(follower_, &RunLogFollower::catchingUp, this, &RunSession::watchProgress);
  connect(follower_, &RunLogFollower::problem, this,
          [this](const QString& message) { Q_EMIT failed(tr("Watch run"), message); });
}

void RunSession::onState(const RunState& s) {
  state_ = s;
  Q_EMIT stateChanged();
}

void RunSession::onUpdate(const TrainingUpdate& u) {
  tokens_per_s_ = u.tokens_per_s;
  state_.step = u.step;
  history_.addUpdate(u);
  Q_EMIT updated();
}

void RunSession::watchRun(const QString& path) {
  QString error;
  if (!RunLogFollower::isRunLog(path, &error)) {  // before the current run is closed
    Q_EMIT failed(tr("Watch run"), error);
    return;
  }
  invoke([w = worker_] { w->closeRun(); });
  waitForIdle();  // the hosted run's last signals land before the watched run's first
  follower_->follow(path, &error);
}

bool RunSession::isWatching() const { return follower_->following(); }

void RunSession::stopWatching() { follower_->stop(); }

RunSession::~RunSession() {
  // The quit event queues behind the step in progress: at most one step of waiting.
  invoke([w = worker_] { w->execute(cmd::Pause{}); });
  thread_.quit();
  thread_.wait();
  delete worker_;  // its thread has finished, so deleting it here is safe
}

template <class F>
void RunSession::invoke(F&& call) {
  QMetaObject::invokeMethod(worker_, std::forward<F>(call), Qt::QueuedConnection);
}

void RunSession::post(SessionCommand command) {
  if (replacesRun(command)) stopWatching();
  invoke([w = worker_, c = std::move(command)] { w->execute(c); });
}

bool RunSession::cudaAvailable(QString* why) {
  std::string reason;
  const bool ok = cuda_available(&reason);
  if (why) *why = QString::fromStdString(reason);
  return ok;
}

void RunSession::waitForIdle() {
  // A blocking call runs after everything queued before it; the worker's own signals are then
  // delivered by the caller's event loop (tests use QTRY_* or processEvents afterwards).
  QMetaObject::invokeMethod(
      worker_, [] {}, Qt::BlockingQueuedConnection);
  QCoreApplication::processEvents();
}

}  // namespace unipool::studio
