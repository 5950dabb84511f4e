// Files built to hurt (issue 23, item 5): the engine's readers of downloaded models stay
// bounded in time and memory and answer with a message, never a crash or a hang. A checkpoint
// folder of 10,000 shards opens with progress for each; config.json and index files past the
// size cap are refused by their size before being read; a tokenizer.json with a million merges
// loads and tokenizes like the library does (each merge applied by rank). Timings print; they
// are not asserted (the machine may be loaded).
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>
#include <fstream>
#include <nlohmann/json.hpp>

#include "moe_fixtures.h"
#include "unipool/moe_checkpoint.h"
#include "unipool/safetensors.h"
#include "unipool/tokenizer.h"

using namespace unipool;

namespace {

void write_bytes(const QString& path, const std::vector<uint8_t>& bytes) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly));
  QCOMPARE(f.write(reinterpret_cast<const char*>(bytes.data()), qint64(bytes.size())),
           qint64(bytes.size()));
}

// A UTF-8 string of one CJK character per index (U+4E00 on): 1,000 distinct letters.
std::string letter(int i) {
  const int c = 0x4E00 + i;
  return {char(0xE0 | (c >> 12)), char(0x80 | ((c >> 6) & 0x3F)), char(0x80 | (c & 0x3F))};
}

}  // namespace

using fixtures::message_of;

class TestHostileInputs : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;

 private Q_SLOTS:
  // One real model file among 9,999 empty shards (each a valid safetensors file with no
  // tensor): every one is mapped and its header read, with a progress call for each.
  void tenThousandShardsOpenWithProgress() {
    const QString dir = dir_.filePath("shards");
    fixtures::Spec s;
    s.family = "mixtral";
    const fixtures::Written w = fixtures::write(dir, s);
    const std::vector<uint8_t> empty = serialize_safetensors({{"format", "pt"}}, {});
    for (int i = 0; i < 9999; ++i)
      write_bytes(dir + QString("/shard-%1.safetensors").arg(i, 5, 10, QChar('0')), empty);
    QElapsedTimer timer;
    timer.start();
    int calls = 0;
    double last = -1;
    bool monotone = true;
    const auto ck = MoeCheckpoint::open(dir.toStdString(), [&](double f, const std::string&) {
      monotone = monotone && f >= last && f <= 1.0;
      last = f;
      ++calls;
      return true;
    });
    qInfo("10,000 shards opened in %lld ms", timer.elapsed());
    QCOMPARE(int(ck->files().size()), 10000);
    QCOMPARE(ck->architecture().total_params, w.total_params);
    QVERIFY(calls >= 10000);
    QVERIFY(monotone);
    QCOMPARE(last, 1.0);
  }

  // config.json and model.safetensors.index.json over 64 MiB (sparse files: no disk used)
  // are refused by size, not read into memory.
  void oversizedJsonIsRefusedBySize() {
    for (const char* name : {"config.json", "model.safetensors.index.json"}) {
      const QString dir = dir_.filePath(QString("big_") + name);
      fixtures::Spec s;
      s.family = "olmoe";
      fixtures::write(dir, s);
      QFile f(dir + "/" + name);
      QVERIFY(f.open(QIODevice::WriteOnly));
      QVERIFY(f.resize(qint64(100) << 20));
      f.close();
      const QString m = message_of<FormatError>([&] { MoeCheckpoint::open(dir.toStdString()); });
      QVERIFY2(m.contains(name) && m.contains("too large") && m.contains("64 MiB"),
               qPrintable(m));
    }
  }

  // 1,000 letters and all 1,000,000 two-letter merges: loads, and a text of pairs whose ranks
  // are known encodes to exactly those pairs (the lowest-ranked merge applies first).
  void aMillionMergesLoadAndApplyByRank() {
    const int n = 1000;
    nlohmann::json vocab = nlohmann::json::object();
    for (int i = 0; i < n; ++i) vocab[letter(i)] = i;
    nlohmann::json merges = nlohmann::json::array();
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) {
        vocab[letter(a) + letter(b)] = n + a * n + b;
        merges.push_back(letter(a) + " " + letter(b));
      }
    const nlohmann::json tok = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
    const std::string path = dir_.filePath("million.tokenizer.json").toStdString();
    std::ofstream(path) << tok.dump();
    QElapsedTimer timer;
    timer.start();
    const auto t = Tokenizer::from_file(path);
    qInfo("a million merges loaded in %lld ms", timer.elapsed());
    QCOMPARE(t->vocab_size(), int64_t(n + n * n));
    // "x y z": merges (x,y) and (y,z) compete; the one with the lower rank (earlier) wins.
    const std::string text = letter(5) + letter(999) + letter(3);  // (5,999) ranks before (999,3)
    const std::vector<int32_t> ids = t->encode(text, false);
    QCOMPARE(ids, (std::vector<int32_t>{n + 5 * n + 999, 3}));
    const std::string back = letter(998) + letter(0) + letter(7);  // (998,0) after (0,7)
    QCOMPARE(t->encode(back, false), (std::vector<int32_t>{998, n + 0 * n + 7}));
    QCOMPARE(t->piece(n + 5 * n + 999), letter(5) + letter(999));
  }
};

QTEST_GUILESS_MAIN(TestHostileInputs)
#include "tst_hostile_inputs.moc"
