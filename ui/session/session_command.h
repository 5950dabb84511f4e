// What the window asks of a run, as values (the way LiveSetting already was): RunSession has
// one post(), the worker one execute(), and a new command is a struct here and a case in
// TrainingWorker::execute. Commands run on the worker's thread in the order they were posted.
#pragma once

#include <QMetaType>
#include <QString>
#include <variant>

#include "unipool/engine.h"
#include "unipool/live_settings.h"

namespace unipool::studio {

namespace cmd {

// A new run (from the form, a lesson, Reset, the compare view); `label` names its source.
struct CreateRun {
  ModelConfig config;
  TrainOptions options;
  DataSpec data;
  QString label;
  ComputeOptions compute;
};
struct OpenCheckpoint {
  QString path;
};
// A run recipe (.unipool.json): the run it creates, then its settings at their steps.
struct OpenRecipe {
  QString path;
};
struct Start {};
struct Pause {};
struct StepOnce {};
// Trains, and pauses when the engine reaches `step`.
struct RunUntil {
  int64_t step = 0;
};
// Random routing in `layer` switched over, from the engine's state when the worker applies it
// (two quick clicks on two rows both land).
struct ToggleRandomLayer {
  int layer = 0;
};
struct Save {
  QString path;
};
// A copy for an experiment: written like Save, but the run keeps its source (copySaved()).
struct SaveCopy {
  QString path;
};
struct SaveRecipe {
  QString path;
};
struct RequestRoutes {
  QString text;
};
struct RequestGenerate {
  QString prompt;
  GenerateOptions options;
};
struct EvaluateValidation {};

}  // namespace cmd

// A live setting (unipool/live_settings.h) is a command too: post(AuxCoef{0.01}).
using SessionCommand =
    std::variant<cmd::CreateRun, cmd::OpenCheckpoint, cmd::OpenRecipe, cmd::Start, cmd::Pause,
                 cmd::StepOnce, cmd::RunUntil, LiveSetting, cmd::ToggleRandomLayer, cmd::Save,
                 cmd::SaveCopy, cmd::SaveRecipe, cmd::RequestRoutes, cmd::RequestGenerate,
                 cmd::EvaluateValidation>;

// Whether the command replaces the run: a session watching a log stops watching first.
inline bool replacesRun(const SessionCommand& c) {
  return std::holds_alternative<cmd::CreateRun>(c) ||
         std::holds_alternative<cmd::OpenCheckpoint>(c) ||
         std::holds_alternative<cmd::OpenRecipe>(c);
}

}  // namespace unipool::studio
