#include "session/checkpoint_analysis.h"

#include <QFileInfo>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>

#include "unipool/corpus.h"

namespace unipool::studio {

namespace {

constexpr size_t kValidationBytes = 64 * 1024;
constexpr uint64_t kValidationSeed = 4242;  // not the training corpus's default seed (7)

}  // namespace

CheckpointReport analyseEngine(const Engine& engine, const QString& path, bool has_train_state) {
  CheckpointReport r;
  r.path = path;
  try {
    r.info.config = engine.config();
    r.info.step = engine.step();
    r.info.tensors = engine.tensors();
    r.info.has_train_state = has_train_state;
    r.params = count_parameters(r.info.config);
    r.expert_norms = engine.expert_norms();
    r.expert_similarity = engine.expert_similarity();
    const LabelledText text = generate_builtin_corpus(kValidationBytes, kValidationSeed);
    const int seq = std::min(128, r.info.config.max_seq_len);
    r.validation = engine.evaluate(text.text, seq, std::nullopt, 64);
  } catch (const std::exception& e) {
    r.error = QString::fromUtf8(e.what());
  }
  return r;
}

CheckpointReport analyseCheckpoint(const QString& path) {
  try {
    const std::string file = path.toStdString();
    // threads = 0: this runs beside a training thread and must not change its BLAS setting.
    auto engine = Engine::open(file, /*resume=*/false, std::nullopt, 0);
    return analyseEngine(*engine, path, QFileInfo::exists(QString::fromStdString(train_state_path(file))));
  } catch (const std::exception& e) {
    CheckpointReport r;
    r.path = path;
    r.error = QString::fromUtf8(e.what());
    return r;
  }
}

CheckpointAnalysis::CheckpointAnalysis(QObject* parent) : QObject(parent) {
  connect(&watcher_, &QFutureWatcher<CheckpointReport>::finished, this,
          [this] { Q_EMIT finished(watcher_.result()); });
}

void CheckpointAnalysis::start(const QString& path) {
  // A previous analysis still running is left to finish on its own: setFuture() stops
  // listening to it, so only the newest file is reported.
  watcher_.setFuture(QtConcurrent::run(analyseCheckpoint, path));
}

}  // namespace unipool::studio
