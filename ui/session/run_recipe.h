// A run recipe (`.unipool.json`): everything needed to get the same run again, step for step:
// the model config, the training options (seed included), the data, and the timeline of live
// settings with the step each was applied at. A teacher saves one; students open it and train
// through the same changes at the same steps (byte-identical checkpoints on the same build).
//
//   {"format": "unipool-recipe", "version": 1, "label": "...", "steps": 300,
//    "config": {SPEC section 6 keys}, "train": {...}, "data": {"path": "", "builtin_bytes": ..,
//    "builtin_seed": ..}, "timeline": [{"step": 120, "kind": "pool_resized",
//    "experts_per_group": 12, "drop": []}, {"step": 200, "kind": "random_routing",
//    "layers": [false, false, false, true, true, true]}, ...]}
#pragma once

#include <QByteArray>
#include <QJsonValue>
#include <QString>
#include <optional>
#include <vector>

#include "unipool/config.h"
#include "unipool/engine.h"
#include "unipool/live_settings.h"

namespace unipool::studio {

struct TimedSetting {
  int64_t step = 0;  // the engine's step when it was applied (before step + 1 trains)
  LiveSetting setting;
};

struct RunRecipe {
  QString label;
  int64_t steps = 0;  // how far the recorded run had trained when the recipe was saved
  ModelConfig config;
  TrainOptions options;
  DataSpec data;
  std::vector<TimedSetting> timeline;  // in the order applied (steps never decrease)
};

QByteArray recipeToJson(const RunRecipe& recipe);
// Strict: a message names what is wrong (line and column for broken JSON, the field otherwise).
std::optional<RunRecipe> recipeFromJson(const QByteArray& json, QString* error);

QJsonValue settingToJson(const LiveSetting& setting);  // {"kind": ..., fields}

}  // namespace unipool::studio
