// Plays a Lesson on a RunSession: runs each step's actions in order (waiting for training to
// reach its step count), then measures the step's expectations. The class's controls stay
// live all the while: a student may take over at any step and come back with replayStep(),
// which reopens the run as it was when the step began (a checkpoint saved then).
#pragma once

#include <QFutureWatcher>
#include <QObject>
#include <QTemporaryDir>
#include <optional>
#include <vector>

#include "session/lessons/lesson.h"
#include "session/lessons/lesson_measures.h"
#include "unipool/experiments.h"

namespace unipool::studio {

class RunSession;

struct ExpectationResult {
  LessonExpectation expectation;
  bool checked = false;  // false: skipped, or the measure was unavailable (see `why`)
  bool passed = false;
  std::optional<double> measured;
  QString why;
};

class LessonPlayer : public QObject {
  Q_OBJECT
 public:
  explicit LessonPlayer(RunSession* session, QObject* parent = nullptr);
  ~LessonPlayer() override;

  void load(const Lesson& lesson);  // stops whatever plays; call start() to begin
  bool hasLesson() const { return !lesson_.steps.empty(); }
  const Lesson& lesson() const { return lesson_; }
  int stepIndex() const { return index_; }
  int stepCount() const { return int(lesson_.steps.size()); }
  const LessonStep* currentStep() const;
  bool busy() const { return busy_; }  // the step's actions are still running
  bool finished() const { return hasLesson() && index_ >= stepCount(); }
  // Why the current step stopped before its end (an action refused, training halted); empty
  // when it ran through.
  const QString& failure() const { return failure_; }
  const std::vector<ExpectationResult>& results() const { return results_; }
  // Every expectation measured so far in this lesson: (step index, result).
  const std::vector<std::pair<int, ExpectationResult>>& log() const { return log_; }
  // Play each step as soon as the previous one finished (tests, unattended demos).
  void setAutoAdvance(bool on) { auto_advance_ = on; }

  void start();       // the first step
  void next();        // the following step (finishes the lesson after the last)
  void back();        // the previous step, replayed from where it began
  void replayStep();  // this step again, from where it began (after a student took over)
  void restart();     // the first step, with a fresh run
  void skip();        // stop this step's training; its expectations are not checked
  void resume();      // carry on with the step's training after a pause
  void stop();        // leave the lesson (the run stays as it is)

 Q_SIGNALS:
  void stepStarted(int index);
  void progress(int done, int total, const QString& what);  // training steps of this step
  void stepFinished(int index, bool all_passed);
  void tabRequested(const QString& tab);
  void lessonFinished();
  // 'probe exported' wrote the run as a downloaded-model folder (Qwen2-MoE layout) there.
  void exportedModelReady(const QString& folder);
  void stopped();

 private:
  void playStep(int index, bool from_snapshot);
  void runNextAction();
  void continueLater();
  void finishStep();
  void abortStep(const QString& reason);
  bool applyAction(const LessonAction& action);
  // 'probe exported': the run saved, exported, opened as a downloaded model and probed on a
  // worker thread; the step goes on when the probe is done.
  void probeExported();
  std::optional<double> probeMeasure(const QString& name, QString* why) const;

  RunSession* session_;
  Lesson lesson_;
  int index_ = -1;
  size_t action_ = 0;
  bool busy_ = false, auto_advance_ = false, skipped_ = false;
  int64_t train_target_ = -1, train_from_ = 0;
  uint64_t generation_ = 0;       // bumps on every jump: callbacks of an older step do nothing
  std::optional<LessonRun> run_;  // the run the lesson last created
  MeasureBaseline baseline_;
  QString abort_reason_, failure_;
  std::vector<ExpectationResult> results_;
  std::vector<std::pair<int, ExpectationResult>> log_;
  QTemporaryDir snapshots_;  // step-N.safetensors: the run when step N began
  std::vector<bool> has_snapshot_;
  struct ExportProbe {
    QString error;
    ProbeResult result;
  };
  QFutureWatcher<ExportProbe> probe_watcher_;
  QMetaObject::Connection copy_saved_;
  std::optional<ProbeResult> probe_;  // the last 'probe exported' of this lesson
};

}  // namespace unipool::studio
