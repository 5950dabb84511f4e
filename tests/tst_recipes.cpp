// Run recipes: a recorded run (creation + live changes at their steps) saved as .unipool.json
// and opened in a fresh session trains to a byte-identical checkpoint; the JSON round-trips;
// broken recipes get messages that say where; a run opened from a checkpoint has no recipe.
#include <QJsonDocument>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "session/run_recipe.h"
#include "session/run_session.h"
#include "studio_util.h"

using namespace unipool;
using namespace unipool::studio;

namespace {

QByteArray readAll(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

RunRecipe sample() {
  RunRecipe r;
  r.label = QStringLiteral("class demo");
  r.steps = 42;
  r.config = preset("tiny").model;
  r.options = preset("tiny").train;
  r.options.seed = 987654321987654321ull;  // above 2^53: must survive JSON
  r.data.builtin_bytes = 300000;
  r.data.builtin_seed = 18446744073709551557ull;
  r.timeline = {{0, LearningRate{0.002}},
                {5, RandomLayers{{false, true}}},
                {5, AuxCoef{0.05}},
                {9, PoolSize{3, {1}}},
                {12, TopK{2}},
                {20, ZCoef{0.001}},
                {30, FreezeNow{}},
                {31, LockNow{}}};
  return r;
}

}  // namespace

class TestRecipes : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void jsonRoundTrips() {
    const RunRecipe r = sample();
    QString error;
    const auto back = recipeFromJson(recipeToJson(r), &error);
    QVERIFY2(back, qPrintable(error));
    QCOMPARE(back->label, r.label);
    QCOMPARE(back->steps, r.steps);
    QVERIFY(back->config == r.config);
    QVERIFY(back->options == r.options);
    QCOMPARE(back->data.builtin_seed, r.data.builtin_seed);
    QCOMPARE(back->data.builtin_bytes, r.data.builtin_bytes);
    QCOMPARE(back->timeline.size(), r.timeline.size());
    for (size_t i = 0; i < r.timeline.size(); ++i) {
      QCOMPARE(back->timeline[i].step, r.timeline[i].step);
      QCOMPARE(settingToJson(back->timeline[i].setting), settingToJson(r.timeline[i].setting));
    }
  }

  void rejectsBrokenRecipes_data() {
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<QString>("says");
    const QByteArray good = recipeToJson(sample());
    QJsonObject o = QJsonDocument::fromJson(good).object();
    auto with = [&](const QString& key, const QJsonValue& v) {
      QJsonObject c = o;
      if (v.isUndefined())
        c.remove(key);
      else
        c[key] = v;
      return QJsonDocument(c).toJson();
    };
    QTest::newRow("broken json") << QByteArray("{\n  \"format\": \"unipool-recipe\",\n  oops\n}")
                                 << "line 3, column";
    QTest::newRow("not a recipe") << with("format", "something") << "not a UniPool run recipe";
    QTest::newRow("version") << with("version", 7) << "version 7";
    QTest::newRow("no config") << with("config", QJsonValue::Undefined) << "'config'";
    QTest::newRow("no timeline") << with("timeline", "soon") << "'timeline'";
    QJsonArray t = o["timeline"].toArray();
    QJsonObject e = t[0].toObject();
    e["kind"] = "colour";
    t[0] = e;
    QTest::newRow("kind") << with("timeline", t) << "timeline[0]: unknown setting kind 'colour'";
    t = o["timeline"].toArray();
    e = t[1].toObject();
    e["step"] = -4;
    t[1] = e;
    QTest::newRow("order") << with("timeline", t) << "timeline[1]: step -4";
    QJsonObject config = o["config"].toObject();
    config["n_layers"] = "six";
    QTest::newRow("config field") << with("config", config) << "n_layers";
  }
  void rejectsBrokenRecipes() {
    QFETCH(QByteArray, json);
    QFETCH(QString, says);
    QString error;
    QVERIFY(!recipeFromJson(json, &error));
    QVERIFY2(error.contains(says), qPrintable(error));
  }

  // The teacher's run: created, trained, changed live at three moments, saved. The student's:
  // the recipe opened in a fresh session and trained to the same step. Same bytes.
  void replaysToAnIdenticalCheckpoint() {
    QTemporaryDir dir;
    const QString recipe = dir.filePath("demo.unipool.json");
    {
      RunSession teacher(QStringLiteral("T"));
      studio_test::create_tiny(teacher);
      QVERIFY(studio_test::train(teacher, 7));
      teacher.post(LearningRate{0.004});
      teacher.post(RandomLayers::from_layer(2, 1));
      QVERIFY(studio_test::train(teacher, 6));
      teacher.post(AuxCoef{0.0});
      teacher.post(PoolSize{3, {}});
      QVERIFY(studio_test::train(teacher, 9));
      QSignalSpy saved(&teacher, &RunSession::recipeSaved);
      teacher.post(cmd::SaveRecipe{recipe});
      teacher.post(cmd::Save{dir.filePath("teacher.safetensors")});
      teacher.waitForIdle();
      QCOMPARE(saved.count(), 1);
    }
    QString error;
    const auto r = recipeFromJson(readAll(recipe), &error);
    QVERIFY2(r, qPrintable(error));
    QCOMPARE(r->steps, int64_t(22));
    QCOMPARE(int(r->timeline.size()), 4);
    QCOMPARE(r->timeline[0].step, int64_t(7));
    QCOMPARE(r->timeline[3].step, int64_t(13));
    {
      RunSession student(QStringLiteral("S"));
      student.post(cmd::OpenRecipe{recipe});
      QVERIFY(studio_test::wait_until([&] { return student.state().valid; }));
      QVERIFY(studio_test::train(student, 22));
      QCOMPARE(student.state().config.experts_per_group, 3);
      student.post(cmd::Save{dir.filePath("student.safetensors")});
      // The student's run records the same timeline: its own recipe is the teacher's.
      student.post(cmd::SaveRecipe{dir.filePath("again.unipool.json")});
      student.waitForIdle();
    }
    for (const char* suffix : {".safetensors", ".train.safetensors"}) {
      const QByteArray a = readAll(dir.filePath(QStringLiteral("teacher") + suffix));
      const QByteArray b = readAll(dir.filePath(QStringLiteral("student") + suffix));
      QVERIFY2(!a.isEmpty(), suffix);
      QVERIFY2(a == b, suffix);
    }
    const auto again = recipeFromJson(readAll(dir.filePath("again.unipool.json")), &error);
    QVERIFY(again);
    QCOMPARE(recipeToJson(*again), recipeToJson(*r));
  }

  void refusesARecipeOfAnOpenedCheckpoint() {
    QTemporaryDir dir;
    RunSession s(QStringLiteral("O"));
    studio_test::create_tiny(s);
    QVERIFY(studio_test::train(s, 3));
    s.post(cmd::Save{dir.filePath("a.safetensors")});
    s.post(cmd::OpenCheckpoint{dir.filePath("a.safetensors")});
    QSignalSpy failed(&s, &RunSession::failed);
    s.post(cmd::SaveRecipe{dir.filePath("r.unipool.json")});
    s.waitForIdle();
    QCOMPARE(failed.count(), 1);
    QVERIFY(failed.at(0).at(1).toString().contains("opened from a checkpoint"));
    QVERIFY(!QFile::exists(dir.filePath("r.unipool.json")));
    // A broken recipe leaves the current run alone.
    QFile bad(dir.filePath("bad.unipool.json"));
    QVERIFY(bad.open(QIODevice::WriteOnly));
    bad.write("{}");
    bad.close();
    s.post(cmd::OpenRecipe{bad.fileName()});
    s.waitForIdle();
    QCOMPARE(failed.count(), 2);
    QCOMPARE(s.state().step, int64_t(3));
    // A 100 MB file (sparse: no disk used) is refused by its size, not read.
    QFile huge(dir.filePath("huge.unipool.json"));
    QVERIFY(huge.open(QIODevice::WriteOnly));
    QVERIFY(huge.resize(qint64(100) << 20));
    huge.close();
    s.post(cmd::OpenRecipe{huge.fileName()});
    s.waitForIdle();
    QCOMPARE(failed.count(), 3);
    QVERIFY2(failed.at(2).at(1).toString().contains("larger than 16 MB"),
             qPrintable(failed.at(2).at(1).toString()));
    QCOMPARE(s.state().step, int64_t(3));
  }

  // Numbers no recipe has: out of an integer's range, fractional, not finite in spirit.
  void rejectsNumbersOutOfRange_data() {
    QTest::addColumn<QString>("field");
    QTest::addColumn<double>("value");
    QTest::newRow("steps 1e300") << "steps" << 1e300;
    QTest::newRow("steps -1") << "steps" << -1.0;
    QTest::newRow("steps 2.5") << "steps" << 2.5;
    QTest::newRow("top_k 3e9") << "k" << 3e9;
  }
  void rejectsNumbersOutOfRange() {
    QFETCH(QString, field);
    QFETCH(double, value);
    QJsonObject o = QJsonDocument::fromJson(recipeToJson(sample())).object();
    if (field == QLatin1String("steps")) {
      o["steps"] = value;
    } else {
      QJsonArray t = o["timeline"].toArray();
      t.append(QJsonObject{{"kind", "top_k"}, {"k", value}, {"step", 1000}});
      o["timeline"] = t;
    }
    QString error;
    QVERIFY(!recipeFromJson(QJsonDocument(o).toJson(), &error));
    QVERIFY2(error.contains("whole number"), qPrintable(error));
  }
};

QTEST_GUILESS_MAIN(TestRecipes)
#include "tst_recipes.moc"
