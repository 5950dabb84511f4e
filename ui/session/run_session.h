// One training run as the window sees it: a TrainingWorker on its own thread, the run's
// bounded history, and the latest RunState. Every call returns at once; results come back as
// signals. Destroying the session stops training after the current step and joins the thread.
#pragma once

#include <QObject>
#include <QString>
#include <QThread>

#include "session/checkpoint_analysis.h"
#include "session/run_history.h"
#include "session/run_types.h"
#include "session/session_command.h"

namespace unipool::studio {

class RunLogFollower;
class TrainingWorker;

class RunSession : public QObject {
  Q_OBJECT
 public:
  // compute_threads > 0 sets the process's compute threads when a run is created (see
  // unipool::set_compute_threads); a second, side-by-side session passes 0.
  explicit RunSession(const QString& name, int compute_threads = 1, QObject* parent = nullptr);
  ~RunSession() override;

  const QString& name() const { return name_; }
  RunHistory& history() { return history_; }
  const RunHistory& history() const { return history_; }
  const RunState& state() const { return state_; }
  bool isRunning() const { return running_; }
  double tokensPerSecond() const { return tokens_per_s_; }

  // Everything the window asks of the run (session/session_command.h), queued to the worker:
  // post(cmd::Start{}), post(AuxCoef{0.01}), post(cmd::Save{path}). A command that replaces
  // the run ends watching a log first.
  void post(SessionCommand command);
  // Whether runs can compute on CUDA here, and if not, why (the form greys the choice).
  static bool cudaAvailable(QString* why);
  // Shows a run this studio does not host, read-only, from its growing JSONL log (see
  // RunLogFollower); the hosted run, if any, is closed. failed() when the file is not a log.
  void watchRun(const QString& path);
  bool isWatching() const;
  // Blocks until the worker has handled everything queued before this call (for tests and
  // the screenshot mode; the window itself never waits on the worker).
  void waitForIdle();

 Q_SIGNALS:
  void stateChanged();
  void runningChanged(bool running);
  void updated();  // new training steps arrived in history()
  void halted(const QString& reason);
  void failed(const QString& what, const QString& message);
  void saved(const QString& path);
  void copySaved(const QString& path);
  void recipeSaved(const QString& path);
  // A watched run wrote its checkpoint (the window shows it in the Checkpoint tab).
  void watchedCheckpoint(const QString& path);
  // A watched log's backlog is being read: `read` of `size` bytes (RunLogFollower::catchingUp).
  void watchProgress(qint64 read, qint64 size);
  void routesReady(const unipool::TokenRoutes& routes);
  void generated(const QString& prompt, const QString& continuation);
  // A checkpoint of ours is open as the run: its report for the Checkpoint tab (read once).
  void checkpointOpened(const unipool::studio::CheckpointReport& report);

 private:
  template <class F>
  void invoke(F&& call);
  void onState(const RunState& s);
  void onUpdate(const TrainingUpdate& u);
  void stopWatching();

  QString name_;
  QThread thread_;
  TrainingWorker* worker_;
  RunLogFollower* follower_;
  RunHistory history_;
  RunState state_;
  bool running_ = false;
  double tokens_per_s_ = 0;
};

}  // namespace unipool::studio
