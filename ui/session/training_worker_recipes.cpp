// The worker's run recipes (session/run_recipe.h): writing the run's creation and the live
// settings applied since, and replaying an opened recipe's settings at their steps.
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>

#include "session/training_worker.h"

namespace unipool::studio {

void TrainingWorker::saveRecipe(const QString& path) {
  const QString title = tr("Save recipe");
  if (!requireEngine(title)) return;
  if (!recordable_) {
    Q_EMIT failed(title, tr("This run was opened from a checkpoint, so how it began is unknown. "
                            "A recipe records a run from its creation: create the run from the "
                            "form, a lesson or a recipe."));
    return;
  }
  RunRecipe r = recipe_;
  r.steps = engine_->step();
  QSaveFile file(path);  // atomic: an old recipe is replaced only by a complete one
  const QByteArray bytes = recipeToJson(r);
  if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit()) {
    Q_EMIT failed(title, tr("Could not write %1: %2").arg(path, file.errorString()));
    return;
  }
  Q_EMIT recipeSaved(path);
}

void TrainingWorker::openRecipe(const QString& path) {
  const QString title = tr("Open recipe");
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    Q_EMIT failed(title, tr("Cannot read %1: %2").arg(path, file.errorString()));
    return;
  }
  // A recipe is a few KB: refuse a huge file rather than read it (or parse a cut-off part).
  constexpr qint64 kMaxRecipeBytes = 16 << 20;
  if (file.size() > kMaxRecipeBytes) {
    Q_EMIT failed(title, tr("%1 is %2 MB: larger than 16 MB, not a run recipe")
                             .arg(path)
                             .arg(file.size() >> 20));
    return;
  }
  QString error;
  const auto recipe = recipeFromJson(file.readAll(), &error);
  if (!recipe) {
    Q_EMIT failed(title, tr("%1: %2").arg(path, error));
    return;
  }
  const uint64_t before = run_serial_;
  createRun(recipe->config, recipe->options, recipe->data,
            recipe->label.isEmpty() ? QFileInfo(path).fileName() : recipe->label);
  if (run_serial_ == before) return;  // createRun reported why
  scheduled_ = recipe->timeline;
  next_scheduled_ = 0;
  applyScheduled();
}

void TrainingWorker::applyScheduled() {
  while (engine_ && next_scheduled_ < scheduled_.size() &&
         scheduled_[next_scheduled_].step <= engine_->step()) {
    const TimedSetting& t = scheduled_[next_scheduled_++];
    if (t.step == engine_->step()) apply(t.setting);
  }
}

}  // namespace unipool::studio
