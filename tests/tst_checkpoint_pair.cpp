// The checkpoint pair (io/checkpoint_pair.h): every state a killed save can leave on disk is
// recovered to the old pair or the new one (built here file by file, the moments a SIGKILL can
// hit; tests/kill_resume.sh kills real runs), and a save that cannot write names the file and
// the cause and leaves the previous pair byte for byte.
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>
#include <memory>

#include "io/checkpoint_pair.h"
#include "unipool/config.h"
#include "unipool/engine.h"

using namespace unipool;
namespace fs = std::filesystem;

namespace {

QByteArray bytes_of(const std::string& path) {
  QFile f(QString::fromStdString(path));
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

void put(const std::string& path, const QByteArray& bytes) {
  QFile f(QString::fromStdString(path));
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  f.write(bytes);
}

struct Pair {
  QByteArray model, state;
};

std::unique_ptr<Engine> tiny_engine() {
  Preset p = preset("tiny");
  p.train.batch = 2;
  p.train.seq = 32;
  return std::make_unique<Engine>(p.model, p.train, DataSpec{"", 20000}, 1);
}

int64_t resumed_step(const std::string& path) {
  return Engine::open(path, /*resume=*/true, std::nullopt, 1)->step();
}

QStringList entries(const QString& dir) {
  return QDir(dir).entryList(QDir::Files | QDir::Hidden | QDir::NoDotAndDotDot, QDir::Name);
}

}  // namespace

class TestCheckpointPair : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  std::string model_, state_;
  Pair a_, b_;  // the pair at step 1 and at step 2

 private Q_SLOTS:
  void initTestCase() {
    model_ = dir_.filePath("m.safetensors").toStdString();
    state_ = train_state_path(model_);
    auto e = tiny_engine();
    e->train_step();
    e->save(model_);
    a_ = {bytes_of(model_), bytes_of(state_)};
    e->train_step();
    e->save(model_);
    b_ = {bytes_of(model_), bytes_of(state_)};
    QVERIFY(a_.state != b_.state && a_.model != b_.model);
    QCOMPARE(entries(dir_.path()), (QStringList{"m.safetensors", "m.train.safetensors"}));
  }

  // Killed after the new model became pending, before the state's rename: the old pair.
  void pendingBeforeCommitIsDropped() {
    put(model_, a_.model);
    put(state_, a_.state);
    put(pending_model_path(model_), b_.model);
    QCOMPARE(resumed_step(model_), int64_t(1));
    QCOMPARE(bytes_of(model_), a_.model);
    QCOMPARE(entries(dir_.path()), (QStringList{"m.safetensors", "m.train.safetensors"}));
  }

  // Killed after the state's rename (the commit), before the model's: the new pair.
  void pendingAfterCommitIsFinished() {
    put(model_, a_.model);
    put(state_, b_.state);
    put(pending_model_path(model_), b_.model);
    QCOMPARE(resumed_step(model_), int64_t(2));
    QCOMPARE(bytes_of(model_), b_.model);
    QCOMPARE(entries(dir_.path()), (QStringList{"m.safetensors", "m.train.safetensors"}));
    // The first save of a run killed there: no model file yet, the pending one becomes it.
    fs::remove(model_);
    put(pending_model_path(model_), b_.model);
    QCOMPARE(inspect_checkpoint(model_).step, int64_t(2));
  }

  // A torn pending model (impossible after fsync, but a disk can lie) never replaces a model.
  void tornPendingIsDropped() {
    put(model_, a_.model);
    put(state_, a_.state);
    put(pending_model_path(model_), b_.model.left(100));
    QCOMPARE(resumed_step(model_), int64_t(1));
    QCOMPARE(bytes_of(model_), a_.model);
  }

  // Temporary files of a writer that died are removed; a live writer's are not touched.
  void deadWritersFilesAreRemoved() {
    put(model_, a_.model);
    put(state_, a_.state);
    const std::string dead = dir_.filePath(".m.safetensors.tmp.999999999.3").toStdString();
    const std::string dead_state =
        dir_.filePath(".m.train.safetensors.tmp.999999999.2").toStdString();
    const std::string live = dir_.filePath(".m.safetensors.tmp.1.0").toStdString();  // init
    put(dead, b_.model.left(50));
    put(dead_state, b_.state.left(50));
    put(live, b_.model.left(50));
    recover_checkpoint_pair(model_, state_);
    QVERIFY(!fs::exists(dead) && !fs::exists(dead_state));
    QVERIFY(fs::exists(live));
    fs::remove(live);
  }

  // A save that cannot write names the file and why, and keeps the previous pair exactly.
  void failedSaveKeepsThePair() {
    put(model_, a_.model);
    put(state_, a_.state);
    auto e = Engine::open(model_, true, std::nullopt, 1);
    e->train_step();
    // The folder vanished under the run.
    QTemporaryDir gone;
    const std::string lost = gone.filePath("sub/m.safetensors").toStdString();
    QString msg;
    try {
      e->save(lost);
    } catch (const CheckpointError& x) {
      msg = x.what();
    }
    QVERIFY2(msg.contains("sub/m.") && msg.contains("No such file or directory"), qPrintable(msg));
    // The model's name is taken by a folder: the state must not change either.
    const std::string blocked = gone.filePath("blocked.safetensors").toStdString();
    QVERIFY(QDir(gone.path()).mkdir("blocked.safetensors"));
    put(train_state_path(blocked), a_.state);
    msg.clear();
    try {
      e->save(blocked);
    } catch (const CheckpointError& x) {
      msg = x.what();
    }
    QVERIFY2(msg.contains("blocked.safetensors") && msg.contains("previous checkpoint is kept"),
             qPrintable(msg));
    QCOMPARE(bytes_of(train_state_path(blocked)), a_.state);
    QCOMPARE(entries(gone.path()), QStringList{"blocked.train.safetensors"});
    QCOMPARE(bytes_of(model_), a_.model);
    QCOMPARE(bytes_of(state_), a_.state);
  }
};

QTEST_APPLESS_MAIN(TestCheckpointPair)
#include "tst_checkpoint_pair.moc"
