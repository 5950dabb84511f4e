// classify_model_file (unipool/model_file.h), the one decision File > Open makes: ours, a
// downloaded model of a family we run, another MoE checkpoint, or not a model (with why).
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include "unipool/engine.h"
#include "unipool/model_file.h"
#include "unipool/safetensors.h"

using namespace unipool;

namespace {

void write_text(const QString& path, const QByteArray& text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(text);
}

ModelFileKind kind_of(const QString& path) { return classify_model_file(path.toStdString()).kind; }

}  // namespace

class TestModelFile : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void classifies() {
    QTemporaryDir dir;
    // Ours.
    Preset p = preset("tiny");
    p.train.batch = 2;
    p.train.seq = 32;
    Engine e(p.model, p.train, DataSpec{"", 20000}, 1);
    const QString ours = dir.filePath("ours.safetensors");
    e.save(ours.toStdString());
    QVERIFY(kind_of(ours) == ModelFileKind::UniPool);
    // Not a model: garbage, a missing file; each says why.
    const QString garbage = dir.filePath("garbage.safetensors");
    write_text(garbage, "this is not a checkpoint at all");
    ModelFileCheck c = classify_model_file(garbage.toStdString());
    QVERIFY(c.kind == ModelFileKind::NotAModel);
    QVERIFY2(QString::fromStdString(c.why).contains("garbage.safetensors"), c.why.c_str());
    c = classify_model_file(dir.filePath("missing.safetensors").toStdString());
    QVERIFY(c.kind == ModelFileKind::NotAModel && c.why.find("no such file") != std::string::npos);
    // Another format's safetensors (or none named), alone: its experts, not a run.
    const TensorRecord t{"model.layers.0.mlp.experts.0.w1.weight", DType::F32, {2, 2},
                         std::vector<uint8_t>(16, 0)};
    QDir(dir.path()).mkdir("other");
    const QString other = dir.filePath("other/model.safetensors");
    write_safetensors_atomic(other.toStdString(), {{"format", "pt"}}, {t});
    QVERIFY(kind_of(other) == ModelFileKind::MoeCheckpoint);
    const QString bare = dir.filePath("other/bare.safetensors");
    write_safetensors_atomic(bare.toStdString(), {}, {t});
    QVERIFY(kind_of(bare) == ModelFileKind::MoeCheckpoint);
    QVERIFY(kind_of(dir.filePath("other")) == ModelFileKind::MoeCheckpoint);  // no config.json
    // Beside a config.json of a family we run: a downloaded model, file or folder.
    write_text(dir.filePath("other/config.json"), "{\"model_type\": \"mixtral\"}");
    QVERIFY(kind_of(other) == ModelFileKind::Downloaded);
    QVERIFY(kind_of(dir.filePath("other")) == ModelFileKind::Downloaded);
    write_text(dir.filePath("other/config.json"), "{\"model_type\": \"jamba\"}");
    QVERIFY(kind_of(dir.filePath("other")) == ModelFileKind::MoeCheckpoint);
    write_text(dir.filePath("other/config.json"), "{ not json");
    QVERIFY(kind_of(other) == ModelFileKind::MoeCheckpoint);
    // Ours stays ours even beside a config.json.
    QVERIFY(QFile::copy(ours, dir.filePath("other/ours.safetensors")));
    QVERIFY(kind_of(dir.filePath("other/ours.safetensors")) == ModelFileKind::UniPool);
  }
};

QTEST_APPLESS_MAIN(TestModelFile)
#include "tst_model_file.moc"
