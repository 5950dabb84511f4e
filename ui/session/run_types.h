// Plain values that travel from the training thread to the window through queued signals.
// Everything here is copied, never shared: the engine keeps its own state on its thread.
#pragma once

#include <QMetaType>
#include <QString>
#include <cstdint>
#include <string>
#include <vector>

#include "unipool/config.h"
#include "unipool/engine.h"
#include "unipool/live_settings.h"
#include "unipool/stats.h"

namespace unipool::studio {

// One optimizer step as the loss curves need it.
struct StepPoint {
  int64_t step = 0;
  double loss = 0, ce = 0, aux = 0, lr = 0, tokens_per_s = 0;
  bool applied = true;
};

// Something that changed while training; drawn as a marker on the loss curves.
struct ChangeEvent {
  // `kind` is the machine name the metrics exports write: a live setting's (AppliedSetting::
  // kind, unipool/live_settings.h) or one of the run's own events below. The setting kinds are
  // named here too for code that looks for a particular one.
  static inline const QString Halted = QStringLiteral("halted");
  static inline const QString Opened = QStringLiteral("opened");
  static inline const QString PoolResized = QStringLiteral("pool_resized");
  static inline const QString TopK = QStringLiteral("top_k");
  static inline const QString LearningRate = QStringLiteral("learning_rate");

  int64_t step = 0;
  QString kind = Opened;
  QString text;  // short label: "pool 24 -> 16", "random: L3,4,5", "lr 0.003"
  // Pool size and top-k change the routing's shape: the history starts new routing windows.
  bool reshapesRouting() const { return kind_reshapes_routing(kind.toStdString()); }
};

// Everything the worker did since its last update, sent at most ~20 times a second.
struct TrainingUpdate {
  std::vector<StepPoint> steps;  // the new steps, in order
  RoutingCounts routing;         // their routing summed (empty when statistics are off)
  int64_t step = 0;              // the engine's step after them
  double tokens_per_s = 0;       // of the last step
};

// The model a run holds now: sent when a run is created or opened and after every change of
// its shape or settings, so the window never reads the engine across threads.
struct RunState {
  bool valid = false;
  ModelConfig config;
  TrainOptions options;
  int64_t step = 0;
  std::vector<bool> random_layers;
  std::vector<std::string> domain_names;
  std::string data_path;   // the training text's file or folder; empty: the built-in corpus
  QString source;          // preset name or checkpoint path
  bool can_train = false;  // false for a model opened without training text
  LockStatus lock;         // UniPool-lock: phase, partition, reference loss (enabled = false)
  QString compute;         // where the engine computes: "CPU, fused operators", ...
  bool watching = false;   // a run this studio follows from its log: nothing here can change it
  uint64_t run_serial = 0;  // changes when a run is created or opened (not when one changes)
};

// One evaluation of the validation text.
struct ValidationPoint {
  int64_t step = 0;
  double ce = 0;
  RoutingCounts routing;
};

}  // namespace unipool::studio

Q_DECLARE_METATYPE(unipool::studio::StepPoint)
Q_DECLARE_METATYPE(unipool::studio::ChangeEvent)
Q_DECLARE_METATYPE(unipool::studio::TrainingUpdate)
Q_DECLARE_METATYPE(unipool::studio::RunState)
Q_DECLARE_METATYPE(unipool::studio::ValidationPoint)
Q_DECLARE_METATYPE(unipool::TokenRoutes)
