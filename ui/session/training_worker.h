// The engine's thread. A TrainingWorker lives on its own QThread and owns the Engine; the
// window talks to it only through queued calls (RunSession) and hears back through signals
// carrying plain values. Training advances one step per event-loop turn, so a pause, a
// setting or a quit queued by the window takes effect after at most one step.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <memory>

#include "session/checkpoint_analysis.h"
#include "session/run_recipe.h"
#include "session/run_types.h"
#include "session/session_command.h"

namespace unipool::studio {

class TrainingWorker : public QObject {
  Q_OBJECT
 public:
  explicit TrainingWorker(int compute_threads, QObject* parent = nullptr);
  ~TrainingWorker() override;

  // ---- called on the worker's thread (queued by RunSession) ----
  // Carries out one command (session/session_command.h). A live setting: the engine validates
  // and applies it between two steps; a refusal becomes failed(title, reason), a success a
  // marker (changeApplied) and a new runStateChanged.
  void execute(const SessionCommand& command);
  // Drops the run (the session watches one it does not host instead); no runReplaced.
  void closeRun();

 Q_SIGNALS:
  // A new engine replaced the old one: everything emitted before belongs to the old run.
  void runReplaced();
  void runStateChanged(const unipool::studio::RunState& state);
  void trainingUpdate(const unipool::studio::TrainingUpdate& update);
  void validated(const unipool::studio::ValidationPoint& point);
  void changeApplied(const unipool::studio::ChangeEvent& event);
  void runningChanged(bool running);
  // Training stopped by itself: a non-finite loss (the last good state is kept) or an error.
  void halted(const QString& reason);
  void failed(const QString& what, const QString& message);
  void saved(const QString& path);
  void copySaved(const QString& path);
  void recipeSaved(const QString& path);
  void routesReady(const unipool::TokenRoutes& routes);
  void generated(const QString& prompt, const QString& continuation);
  // After a checkpoint of ours was opened: what the Checkpoint tab shows.
  void checkpointOpened(const unipool::studio::CheckpointReport& report);

 private:
  void createRun(const ModelConfig& config, const TrainOptions& options, const DataSpec& data,
                 const QString& label, const ComputeOptions& compute = {});
  void openCheckpoint(const QString& path);
  void start();
  void pause();
  void stepOnce();
  void runUntil(int64_t step);
  void apply(const LiveSetting& setting);
  void toggleRandomLayer(int layer);
  void save(const QString& path);
  void saveCopy(const QString& path);
  // Run recipes (session/run_recipe.h): the run's creation and its timeline of live settings.
  // Opening one creates the run and applies each setting when the engine reaches its step.
  void saveRecipe(const QString& path);
  void openRecipe(const QString& path);
  void requestRoutes(const QString& text);
  void requestGenerate(const QString& prompt, const GenerateOptions& options);
  void evaluateValidation();
  void tick();
  void scheduleTick();
  void setRunning(bool running);
  void flush();
  void publishState();
  void note(const QString& kind, const QString& text);
  bool requireEngine(const QString& what);
  StepPoint trainOne();
  void applyScheduled();  // the opened recipe's settings due at the engine's step
  void generateChunk(const QString& prompt, const GenerateOptions& options, const std::string& done,
                     uint64_t run);

  int compute_threads_;
  std::unique_ptr<Engine> engine_;
  uint64_t run_serial_ = 0;  // counts the engines created or opened, for work spread over events
  QString source_;
  bool can_train_ = false;
  bool running_ = false, tick_scheduled_ = false;
  int64_t stop_at_ = -1;
  TrainingUpdate pending_;
  // The run as created (a recipe's start) and the settings applied since, with their steps;
  // `recordable_` is false for a run opened from a checkpoint (its beginning is unknown).
  RunRecipe recipe_;
  bool recordable_ = false;
  std::vector<TimedSetting> scheduled_;  // an opened recipe's timeline still to apply
  size_t next_scheduled_ = 0;
  QElapsedTimer since_flush_;
};

}  // namespace unipool::studio
