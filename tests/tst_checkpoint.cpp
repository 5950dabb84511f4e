// Checkpoints (SPEC section 6): a saved model reads back exactly, and every damaged or
// mismatched file is refused with a CheckpointError that says what is wrong (never a crash,
// never another exception type).
#include <sys/resource.h>
#include <unistd.h>

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>

#include "memory_cap.h"
#include "unipool/corpus.h"
#include "unipool/engine.h"
#include "unipool/safetensors.h"

using unipool::CheckpointError;
using unipool::Engine;
using unipool::SafetensorsFile;
using unipool::TensorRecord;

namespace {

unipool::ModelConfig small_model() {
  unipool::ModelConfig c;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.expert_hidden = 16;
  c.layers_per_group = 2;
  c.experts_per_group = 4;
  c.top_k = 1;
  c.max_seq_len = 64;
  unipool::refresh_router_constant(c);
  return c;
}

std::unique_ptr<Engine> small_engine() {
  unipool::TrainOptions o;
  o.batch = 2;
  o.seq = 16;
  o.total_steps = 20;
  o.warmup_steps = 2;
  unipool::DataSpec data;
  data.builtin_bytes = 20000;
  return std::make_unique<Engine>(small_model(), o, data);
}

QByteArray read_all(const std::string& path) {
  QFile f(QString::fromStdString(path));
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

void write_all(const std::string& path, const QByteArray& bytes) {
  QFile f(QString::fromStdString(path));
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  QCOMPARE(f.write(bytes), bytes.size());
}

void write_file(const std::string& path, const SafetensorsFile& f) {
  const std::vector<uint8_t> bytes = unipool::serialize_safetensors(f.metadata, f.tensors);
  write_all(path, QByteArray(reinterpret_cast<const char*>(bytes.data()), qsizetype(bytes.size())));
}

// The CheckpointError message of `fn`; "no error" when it succeeds, "other: ..." for any other
// exception type.
QString error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const CheckpointError& e) {
    return QString::fromUtf8(e.what());
  } catch (const std::exception& e) {
    return "other: " + QString::fromUtf8(e.what());
  }
  return "no error";
}

// Both readers refuse `path` with a message that names the file and contains every `words`.
void expect_refused(const std::string& path, const QStringList& words) {
  const QString open = error_of([&] { Engine::open(path, false); });
  const QString inspect = error_of([&] { unipool::inspect_checkpoint(path); });
  for (const QString& msg : {open, inspect}) {
    QVERIFY2(msg != "no error" && !msg.startsWith("other: "), qPrintable(msg));
    QVERIFY2(msg.contains(QString::fromStdString(path)), qPrintable(msg));
    for (const QString& w : words)
      QVERIFY2(msg.contains(w, Qt::CaseInsensitive), qPrintable(w + " not in: " + msg));
  }
}

TensorRecord* find(SafetensorsFile& f, const std::string& name) {
  for (auto& t : f.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// Rewrites the JSON header of a file image (tensor offsets and all), keeping the data bytes.
QByteArray edit_header(const QByteArray& file, const std::function<void(QJsonObject&)>& edit) {
  uint64_t n = 0;
  std::memcpy(&n, file.constData(), 8);
  QJsonObject header = QJsonDocument::fromJson(file.mid(8, qsizetype(n))).object();
  edit(header);
  QByteArray text = QJsonDocument(header).toJson(QJsonDocument::Compact);
  while (text.size() % 8) text.append(' ');
  const uint64_t m = uint64_t(text.size());
  QByteArray out(8, '\0');
  std::memcpy(out.data(), &m, 8);
  return out + text + file.mid(8 + qsizetype(n));
}

}  // namespace

class TestCheckpoint : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  std::string model_;  // a valid saved model (with its training state)
  SafetensorsFile parsed_;

  std::string path(const char* name) const { return dir_.filePath(name).toStdString(); }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto e = small_engine();
    for (int i = 0; i < 3; ++i) e->train_step();
    model_ = path("model.safetensors");
    e->save(model_);
    parsed_ = unipool::read_safetensors(model_);
  }

  void roundTrip() {
    auto e = small_engine();
    for (int i = 0; i < 4; ++i) e->train_step();
    const std::string p = path("rt.safetensors"), again = path("rt2.safetensors");
    e->save(p);
    auto back = Engine::open(p, false);
    QVERIFY(back->config() == e->config());
    QCOMPARE(back->step(), e->step());
    const auto ta = e->tensors(), tb = back->tensors();
    QCOMPARE(ta.size(), tb.size());
    for (size_t i = 0; i < ta.size(); ++i) {
      QCOMPARE(tb[i].name, ta[i].name);
      QCOMPARE(tb[i].shape, ta[i].shape);
      QCOMPARE(tb[i].dtype, ta[i].dtype);
    }
    QCOMPARE(back->expert_norms(), e->expert_norms());
    const std::string text = unipool::generate_builtin_corpus(600, 4).text;
    const unipool::EvalResult ra = e->evaluate(text, 16), rb = back->evaluate(text, 16);
    QCOMPARE(rb.loss, ra.loss);
    QCOMPARE(rb.n_targets, ra.n_targets);
    QCOMPARE(rb.routing.counts, ra.routing.counts);
    // Saving what was read gives the same bytes; the metadata is SPEC section 6's.
    back->save(again);
    QVERIFY(read_all(p) == read_all(again));
    const SafetensorsFile f = unipool::read_safetensors(p);
    QCOMPARE(f.metadata.at("format"), std::string("unipool"));
    QCOMPARE(f.metadata.at("format_version"), std::string("1"));
    QCOMPARE(f.metadata.at("tokenizer"), std::string("bytes"));
    QCOMPARE(f.metadata.at("step"), std::string("4"));
    QVERIFY(unipool::config_from_json(f.metadata.at("config")) == e->config());
    const unipool::CheckpointInfo info = unipool::inspect_checkpoint(p);
    QVERIFY(info.has_train_state);
    QCOMPARE(info.step, int64_t(4));
  }

  void bf16Checkpoint() {
    // BF16 tensors load as the float with the same top 16 bits.
    SafetensorsFile f = parsed_;
    for (auto& t : f.tensors) {
      std::vector<uint8_t> half;
      for (size_t i = 0; i < t.bytes.size(); i += 4) {
        half.push_back(t.bytes[i + 2]);
        half.push_back(t.bytes[i + 3]);
      }
      t.bytes = half;
      t.dtype = unipool::DType::BF16;
    }
    const std::string p = path("bf16.safetensors"), out = path("bf16_f32.safetensors");
    write_file(p, f);
    Engine::open(p, false)->save(out);
    const SafetensorsFile g = unipool::read_safetensors(out);
    for (const auto& t : g.tensors) {
      const TensorRecord* src = parsed_.find(t.name);
      QVERIFY(src && t.dtype == unipool::DType::F32);
      for (size_t i = 0; i < t.bytes.size(); i += 4) {
        QCOMPARE(t.bytes[i], uint8_t(0));
        QCOMPARE(t.bytes[i + 1], uint8_t(0));
        QCOMPARE(t.bytes[i + 2], src->bytes[i + 2]);
        QCOMPARE(t.bytes[i + 3], src->bytes[i + 3]);
      }
    }
  }

  void truncated() {
    const QByteArray good = read_all(model_);
    uint64_t n = 0;
    std::memcpy(&n, good.constData(), 8);
    const struct {
      qsizetype size;
      const char* word;
    } cuts[] = {{0, "8 bytes"},
                {5, "8 bytes"},
                {8, "header"},
                {qsizetype(8 + n / 2), "header"},
                {qsizetype(8 + n), "data"},
                {good.size() - 1000, "data"},
                {good.size() - 1, "data"}};
    for (const auto& c : cuts) {
      const std::string p = path("cut.safetensors");
      write_all(p, good.left(c.size));
      expect_refused(p, {c.word});
    }
  }

  void badContainer() {
    const QByteArray good = read_all(model_);
    const std::string p = path("bad.safetensors");
    QByteArray bad = good;
    bad[8] = 'x';  // the header's opening brace
    write_all(p, bad);
    expect_refused(p, {"JSON"});
    bad = good;
    const uint64_t huge = uint64_t(1) << 62;
    std::memcpy(bad.data(), &huge, 8);
    write_all(p, bad);
    expect_refused(p, {"header length"});
    write_all(p, QByteArray("This is a plain text file, not a checkpoint at all.\n").repeated(3));
    expect_refused(p, {});
    bad = edit_header(good, [](QJsonObject& h) {
      QJsonObject t = h["lm_head.weight"].toObject();
      t["data_offsets"] = QJsonArray{0, 1e9};
      h["lm_head.weight"] = t;
    });
    write_all(p, bad);
    expect_refused(p, {"lm_head.weight", "data_offsets"});
    // The header editor itself keeps a good file good.
    write_all(p, edit_header(good, [](QJsonObject&) {}));
    QCOMPARE(error_of([&] { Engine::open(p, false); }), QString("no error"));
  }

  void badTensors() {
    const std::string p = path("t.safetensors");
    struct Case {
      const char* what;
      std::function<void(SafetensorsFile&)> edit;
      QStringList words;
    };
    const std::vector<Case> cases = {
        {"I64 dtype",
         [](SafetensorsFile& f) {
           TensorRecord* t = find(f, "layers.0.attn_norm.weight");
           t->dtype = unipool::DType::I64;
           t->bytes.resize(t->bytes.size() * 2);
         },
         {"layers.0.attn_norm.weight", "I64"}},
        {"wrong shape",
         [](SafetensorsFile& f) {
           TensorRecord* t = find(f, "layers.1.router.weight");
           t->shape = {t->shape[1], t->shape[0]};  // (d, Mg) instead of (Mg, d)
         },
         {"layers.1.router.weight", "shape"}},
        {"missing",
         [](SafetensorsFile& f) { f.tensors.erase(f.tensors.begin() + 3); },
         {QString::fromStdString(parsed_.tensors[3].name), "missing"}},
        {"extra",
         [](SafetensorsFile& f) {
           TensorRecord t = f.tensors[0];
           t.name = "layers.0.extra.weight";
           f.tensors.push_back(t);
         },
         {"layers.0.extra.weight", "unexpected"}},
        {"NaN",
         [](SafetensorsFile& f) {
           const float nan = std::numeric_limits<float>::quiet_NaN();
           std::memcpy(find(f, "pool.w_up")->bytes.data() + 40, &nan, 4);
         },
         {"pool.w_up", "NaN"}},
        {"infinity",
         [](SafetensorsFile& f) {
           const float inf = std::numeric_limits<float>::infinity();
           std::memcpy(find(f, "embed.weight")->bytes.data(), &inf, 4);
         },
         {"embed.weight", "infinite"}},
        {"format other", [](SafetensorsFile& f) { f.metadata["format"] = "other"; }, {"other"}},
        {"no config", [](SafetensorsFile& f) { f.metadata.erase("config"); }, {"config"}},
        {"no format", [](SafetensorsFile& f) { f.metadata.clear(); }, {"format"}},
        {"bad step", [](SafetensorsFile& f) { f.metadata["step"] = "-3"; }, {"step"}},
        {"bad version",
         [](SafetensorsFile& f) { f.metadata["format_version"] = "7"; },
         {"format_version"}},
    };
    for (const Case& c : cases) {
      SafetensorsFile f = parsed_;
      c.edit(f);
      write_file(p, f);
      expect_refused(p, c.words);
    }
  }

  void badConfigValues() {
    const std::string p = path("c.safetensors");
    const QJsonObject base =
        QJsonDocument::fromJson(QByteArray::fromStdString(parsed_.metadata.at("config"))).object();
    const std::vector<std::pair<const char*, QJsonValue>> edits = {
        {"top_k", 5}, {"n_layers", 0}, {"router", "foo"}, {"vocab_size", 300}, {"d_model", "16"}};
    for (const auto& [key, value] : edits) {
      QJsonObject c = base;
      c[key] = value;
      SafetensorsFile f = parsed_;
      f.metadata["config"] = QJsonDocument(c).toJson(QJsonDocument::Compact).toStdString();
      write_file(p, f);
      expect_refused(p, {key});
    }
    SafetensorsFile f = parsed_;
    f.metadata["config"] = "{not json";
    write_file(p, f);
    expect_refused(p, {"config"});
  }

  void resumeNeedsTrainState() {
    const std::string p = path("lonely.safetensors");
    write_all(p, read_all(model_));
    QCOMPARE(error_of([&] { Engine::open(p, false); }), QString("no error"));
    QVERIFY(!unipool::inspect_checkpoint(p).has_train_state);
    const QString msg = error_of([&] { Engine::open(p, true); });
    QVERIFY2(msg.contains(QString::fromStdString(unipool::train_state_path(p))), qPrintable(msg));
    // A training state from another step than the model's is refused too.
    auto e = small_engine();
    e->train_step();
    const std::string q = path("older.safetensors");
    e->save(q);
    write_all(p, read_all(model_));                                                   // step 3
    write_all(unipool::train_state_path(p), read_all(unipool::train_state_path(q)));  // step 1
    const QString mismatch = error_of([&] { Engine::open(p, true); });
    QVERIFY2(mismatch.contains("step"), qPrintable(mismatch));
    write_all(unipool::train_state_path(p), "garbage");
    QVERIFY(!error_of([&] { Engine::open(p, true); }).startsWith("other"));
    QVERIFY(error_of([&] { Engine::open(p, true); }) != "no error");
    QVERIFY(error_of([&] {
              Engine::open(path("does_not_exist.safetensors"), false);
            }).contains("does_not_exist"));
  }

  void badTrainState() {
    // The training state is untrusted too: bad options or data sources give a CheckpointError.
    const std::string p = path("state.safetensors");
    const SafetensorsFile good = unipool::read_safetensors(unipool::train_state_path(model_));
    write_all(p, read_all(model_));
    write_file(unipool::train_state_path(p), good);
    QCOMPARE(error_of([&] { Engine::open(p, true); }), QString("no error"));
    const std::vector<std::pair<std::string, std::string>> edits = {
        {"options", "{\"lr\": 1}"},
        {"data", "{\"path\": \"\", \"builtin_bytes\": -5, \"builtin_seed\": 7}"},
        {"data", "{\"path\": \"\", \"builtin_bytes\": 4611686018427387904, \"builtin_seed\": 7}"},
        {"data", "{\"path\": \"/no/such/file.txt\", \"builtin_bytes\": 100, \"builtin_seed\": 7}"},
        {"data", "[]"},
        {"random_layers", "0101"},
        {"format", "unipool"}};
    const MemoryCap cap(size_t(2) << 30);
    for (const auto& [key, value] : edits) {
      SafetensorsFile f = good;
      f.metadata[key] = value;
      write_file(unipool::train_state_path(p), f);
      const QString msg = error_of([&] { Engine::open(p, true); });
      QVERIFY2(msg != "no error" && !msg.startsWith("other"),
               qPrintable(QString::fromStdString(key) + ": " + msg));
      // A bad corpus size is named as such (not a failed allocation of that size).
      if (value.find("builtin_bytes\": -5") != std::string::npos ||
          value.find("46116") != std::string::npos)
        QVERIFY2(msg.contains("builtin_bytes"), qPrintable(msg));
    }
    SafetensorsFile f = good;
    f.tensors.erase(f.tensors.begin());
    write_file(unipool::train_state_path(p), f);
    const QString msg = error_of([&] { Engine::open(p, true); });
    QVERIFY2(msg.contains(QString::fromStdString(good.tensors[0].name)), qPrintable(msg));
  }

  void badTrainStateValues() {
    // Values that would poison training later: negative second moments (sqrt of them is NaN),
    // a negative recent load, a state from another save, an unknown tensor.
    const std::string p = path("values.safetensors");
    const SafetensorsFile good = unipool::read_safetensors(unipool::train_state_path(model_));
    write_all(p, read_all(model_));
    auto set_first_float = [](unipool::TensorRecord& r, float v) {
      std::memcpy(r.bytes.data(), &v, sizeof v);
    };
    auto set_first_double = [](unipool::TensorRecord& r, double v) {
      std::memcpy(r.bytes.data(), &v, sizeof v);
    };
    struct Case {
      const char* want;
      std::function<void(SafetensorsFile&)> corrupt;
    };
    const std::vector<Case> cases = {
        {"negative values",
         [&](SafetensorsFile& f) {
           for (auto& r : f.tensors)
             if (r.name.rfind("exp_avg_sq.", 0) == 0) return set_first_float(r, -1.0f);
         }},
        {"recent_load",
         [&](SafetensorsFile& f) {
           for (auto& r : f.tensors)
             if (r.name == "recent_load") return set_first_double(r, -3.0);
         }},
        {"not saved with", [](SafetensorsFile& f) { f.metadata["save_id"] = "0123456789abcdef"; }},
        {"unexpected tensor", [](SafetensorsFile& f) {
           unipool::TensorRecord extra = f.tensors.back();
           extra.name = "exp_avg.no_such_parameter";
           f.tensors.push_back(extra);
         }}};
    for (const Case& c : cases) {
      SafetensorsFile f = good;
      c.corrupt(f);
      write_file(unipool::train_state_path(p), f);
      const QString msg = error_of([&] { Engine::open(p, true); });
      QVERIFY2(msg.contains(c.want), qPrintable(QString(c.want) + " -> " + msg));
    }
  }

  void headerFuzz() {
    // Random byte changes in the length field and the header: a clean error or a good load,
    // nothing else.
    const QByteArray good = read_all(model_);
    uint64_t n = 0;
    std::memcpy(&n, good.constData(), 8);
    const std::string p = path("fuzz.safetensors");
    uint64_t h = 12345;
    int refused = 0;
    for (int trial = 0; trial < 300; ++trial) {
      QByteArray bad = good;
      for (int k = 0; k < 1 + trial % 3; ++k) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        const qsizetype at = qsizetype((h >> 20) % (8 + n));
        bad[at] = char((h >> 48) & 0xff);
      }
      write_all(p, bad);
      const QString msg = error_of([&] { Engine::open(p, false); });
      QVERIFY2(!msg.startsWith("other"), qPrintable(msg));
      refused += msg != "no error";
    }
    QVERIFY(refused > 100);
  }
};

QTEST_APPLESS_MAIN(TestCheckpoint)
#include "tst_checkpoint.moc"
