// The `unipool` command line (path in UNIPOOL_CLI), run with QProcess in a temporary folder:
// exit codes, files and JSON outputs, resuming, and a cross-check against the PyTorch reference.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

namespace {

struct Result {
  int code = -1;  // -1: did not finish in time, -2: crashed
  QByteArray out, err;
};

Result run_program(const QString& program, const QStringList& args, const QString& cwd,
                   int timeout_s = 120) {
  QProcess p;
  p.setWorkingDirectory(cwd);
  p.start(program, args);
  Result r;
  if (!p.waitForStarted(10000)) return r;
  if (!p.waitForFinished(timeout_s * 1000)) {
    p.kill();
    p.waitForFinished();
    return r;
  }
  r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2;
  r.out = p.readAllStandardOutput();
  r.err = p.readAllStandardError();
  return r;
}

QByteArray read_all(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

void write_all(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  QCOMPARE(f.write(bytes), bytes.size());
}

QJsonObject json_of(const QByteArray& text) {
  QJsonParseError e;
  const QJsonDocument d = QJsonDocument::fromJson(text.trimmed(), &e);
  return e.error == QJsonParseError::NoError ? d.object() : QJsonObject();
}

// Some text with structure: a byte-level model and the reference must agree on it.
QByteArray sample_text(int n) {
  QByteArray t;
  for (int i = 0; t.size() < n; ++i)
    t += QByteArray("record ") + QByteArray::number(i * 37 % 1000) + " = value;\n";
  return t.left(n);
}

}  // namespace

class TestCli : public QObject {
  Q_OBJECT

  QString cli_;
  QTemporaryDir dir_;

  Result cli(const QStringList& args, int timeout_s = 120) {
    return run_program(cli_, args, dir_.path(), timeout_s);
  }
  QString at(const char* name) const { return dir_.filePath(name); }

 private Q_SLOTS:
  void initTestCase() {
    cli_ = qEnvironmentVariable("UNIPOOL_CLI");
    QVERIFY2(!cli_.isEmpty() && QFile::exists(cli_),
             "set UNIPOOL_CLI to the unipool binary (ctest does)");
    QVERIFY(dir_.isValid());
    write_all(at("text.txt"), sample_text(1000));
  }

  void help() {
    const Result r = cli({"--help"});
    QCOMPARE(r.code, 0);
    for (const char* sub : {"train", "eval", "inspect", "generate", "bench"})
      QVERIFY2(r.out.contains(sub), sub);
  }

  void trainWritesFiles() {
    const Result r = cli({"train", "--preset", "tiny", "--steps", "30", "--out", "m.safetensors",
                          "--log", "log.jsonl", "--quiet"});
    QVERIFY2(r.code == 0, r.err.constData());
    QVERIFY(QFile::exists(at("m.safetensors")));
    QVERIFY(QFile::exists(at("m.train.safetensors")));
    QList<QByteArray> lines = read_all(at("log.jsonl")).trimmed().split('\n');
    QCOMPARE(lines.size(), 32);  // the run's header, one line a step, the checkpoint saved
    const QJsonObject header = json_of(lines.takeFirst())["run"].toObject();
    const QJsonObject saved = json_of(lines.takeLast());
    QVERIFY(saved["saved"].toString().endsWith("m.safetensors"));
    QCOMPARE(saved["at_step"].toInt(), 30);
    QCOMPARE(header["config"].toObject()["n_layers"].toInt(), 2);
    QCOMPARE(header["world_size"].toInt(), 1);
    for (int i = 0; i < lines.size(); ++i) {
      const QJsonObject o = json_of(lines[i]);
      for (const char* key : {"step", "loss", "ce", "aux", "lr", "tokens_per_s"})
        QVERIFY2(o.contains(key), key);
      QCOMPARE(o["step"].toInt(), i + 1);
      QVERIFY(std::isfinite(o["loss"].toDouble()) && o["tokens_per_s"].toDouble() > 0 &&
              o["lr"].toDouble() > 0);
    }
  }

  void badArguments() {
    const QList<QStringList> cases = {
        {},
        {"train", "--nosuch-option"},
        {"eval", "--text", "text.txt", "--seq", "8"},  // no --checkpoint
        {"train", "--preset", "nosuch"},
        {"train", "--preset", "tiny", "--steps", "0"},
        {"eval", "--checkpoint", "m.safetensors", "--text", "text.txt", "--seq", "8",
         "--random-layers", "9"},
        {"eval", "--checkpoint", "m.safetensors", "--text", "text.txt", "--seq", "8",
         "--random-layers", "x"},
        {"frobnicate"}};
    for (const QStringList& args : cases) {
      const Result r = cli(args);
      QVERIFY2(r.code == 2, qPrintable(args.join(' ') + " -> " + QString::number(r.code)));
      QVERIFY2(!r.err.isEmpty(), qPrintable(args.join(' ')));
    }
  }

  void corruptCheckpoint() {
    QByteArray bad = read_all(at("m.safetensors"));
    QVERIFY(bad.size() > 1000);
    write_all(at("bad.safetensors"), bad.left(bad.size() / 2));
    for (const QStringList& args : QList<QStringList>{
             {"inspect", "bad.safetensors"},
             {"eval", "--checkpoint", "bad.safetensors", "--text", "text.txt", "--seq", "8"},
             {"generate", "--checkpoint", "bad.safetensors", "--prompt", "x"}}) {
      const Result r = cli(args);
      QVERIFY2(r.code == 1, qPrintable(args.join(' ') + " -> " + QString::number(r.code)));
      QVERIFY2(r.err.contains("bad.safetensors"), r.err.constData());
    }
  }

  void evalJson() {
    const Result r = cli(
        {"eval", "--checkpoint", "m.safetensors", "--text", "text.txt", "--seq", "64", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject o = json_of(r.out);
    QVERIFY(std::isfinite(o["loss"].toDouble()) && o["loss"].toDouble() > 0);
    QCOMPARE(o["n_targets"].toInt(), 999 / 64 * 64);
    const QJsonArray counts = o["counts"].toArray();
    QCOMPARE(counts.size(), 2);  // L x Mg for the tiny preset, top-1
    int64_t total = 0;
    for (const auto& layer : counts) {
      QCOMPARE(layer.toArray().size(), 8);
      for (const auto& c : layer.toArray()) total += c.toInt();
    }
    QCOMPARE(total, int64_t(999 / 64 * 64) * 2 * 1);
    const QJsonObject info = json_of(cli({"inspect", "m.safetensors", "--json"}).out);
    QCOMPARE(o["router_c"].toDouble(), info["config"].toObject()["router_c"].toDouble());
    QVERIFY(o["router_c"].toDouble() > 1.0);
  }

  // --device / --backend: the generic operators evaluate the same checkpoint to the same loss
  // and counts; a device this build cannot run is refused with the reason and exit code 2.
  void computeFlags() {
    const QStringList eval = {"eval",  "--checkpoint", "m.safetensors", "--text", "text.txt",
                              "--seq", "64",           "--json"};
    const Result fused = cli(eval);
    const Result generic = cli(eval + QStringList{"--backend", "generic"});
    QVERIFY2(generic.code == 0, generic.err.constData());
    const QJsonObject a = json_of(fused.out), b = json_of(generic.out);
    QVERIFY(std::abs(a["loss"].toDouble() - b["loss"].toDouble()) < 1e-5 * a["loss"].toDouble());
    QCOMPARE(a["counts"], b["counts"]);
    const Result cuda = cli({"train", "--preset", "tiny", "--steps", "2", "--device", "cuda"});
    if (cuda.code != 0) {  // a CPU-only LibTorch or no GPU: say so, exit 2, write nothing
      QCOMPARE(cuda.code, 2);
      QVERIFY2(cuda.err.contains("device cuda: "), cuda.err.constData());
    }
    const Result bad = cli({"bench", "--backend", "fused", "--device", "cuda", "--steps", "1"});
    QCOMPARE(bad.code, 2);
    const Result bf16 = cli({"bench", "--bf16", "--steps", "1"});
    QCOMPARE(bf16.code, 2);
    QVERIFY2(bf16.err.contains("bf16"), bf16.err.constData());
  }

  void inspectJson() {
    const Result r = cli({"inspect", "m.safetensors", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject o = json_of(r.out);
    const QJsonObject config = o["config"].toObject();
    QCOMPARE(config["experts_per_group"].toInt(), 8);
    QCOMPARE(config["n_layers"].toInt(), 2);
    QCOMPARE(o["budget_ratio"].toDouble(), 8.0 / (8 * 2));  // one pool of 8 vs 8 per layer
    const QJsonArray tensors = o["tensors"].toArray();
    QCOMPARE(tensors.size(), 1 + 2 * 8 + 3 + 2);  // SPEC section 6, NormRouter
    double total = 0;
    for (const auto& t : tensors) {
      double n = 1;
      for (const auto& d : t.toObject()["shape"].toArray()) n *= d.toDouble();
      total += n;
    }
    QCOMPARE(o["params_total"].toDouble(), total);
    QCOMPARE(o["step"].toInt(), 30);
  }

  void generate() {
    const Result r =
        cli({"generate", "--checkpoint", "m.safetensors", "--prompt", "Hello", "--tokens", "20"});
    QVERIFY2(r.code == 0, r.err.constData());
    QVERIFY(r.out.startsWith("Hello"));
    QCOMPARE(r.out.size(), qsizetype(5 + 20 + 1));  // prompt, 20 bytes, end of line
    QCOMPARE(
        cli({"generate", "--checkpoint", "m.safetensors", "--prompt", "Hello", "--tokens", "20"})
            .out,
        r.out);
  }

  void bench() {
    const Result r = cli({"bench", "--preset", "tiny", "--steps", "2", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject o = json_of(r.out);
    QVERIFY(o["train_tokens_per_s"].toDouble() > 0);
    QVERIFY(o["infer_tokens_per_s"].toDouble() > 0);
    QVERIFY(!o.contains("compare"));
    // Paired against another preset in the same process: both step times and their ratio.
    const Result paired =
        cli({"bench", "--preset", "tiny", "--steps", "2", "--compare", "tiny", "--json"});
    QVERIFY2(paired.code == 0, paired.err.constData());
    const QJsonObject c = json_of(paired.out)["compare"].toObject();
    QCOMPARE(c["preset"].toString(), QStringLiteral("tiny"));
    QCOMPARE(c["pairs"].toInt(), 2);
    QVERIFY(c["ms_per_step"].toDouble() > 0 && c["other_ms_per_step"].toDouble() > 0);
    const double pct = c["step_time_over_other_pct"].toDouble();
    QVERIFY(std::isfinite(pct) && pct > -100.0);
    QCOMPARE(cli({"bench", "--preset", "tiny", "--steps", "1", "--compare", "nosuch"}).code, 2);
    // --threads-scan: one row per count (1 added when missing), the speed-up against 1.
    const Result scan =
        cli({"bench", "--preset", "tiny", "--steps", "2", "--warmup", "1", "--threads-scan", "2,3", "--json"});
    QVERIFY2(scan.code == 0, scan.err.constData());
    const QJsonArray rows = json_of(scan.out)["threads_scan"].toArray();
    QCOMPARE(rows.size(), 3);
    for (int i = 0; i < 3; ++i) {
      const QJsonObject row = rows[i].toObject();
      QCOMPARE(row["threads"].toInt(), i + 1);
      QVERIFY(row["train_tokens_per_s"].toDouble() > 0 && row["ms_per_step"].toDouble() > 0);
      QVERIFY(row["speedup_over_1"].toDouble() > 0);
    }
    QCOMPARE(rows[0].toObject()["speedup_over_1"].toDouble(), 1.0);
    QCOMPARE(cli({"bench", "--preset", "tiny", "--threads-scan", "0"}).code, 2);
  }

  // The engine's threads share the work out, but never its results: the same thread count
  // twice gives the same bytes (both files), whatever the scheduling; and one thread gives
  // the bytes of BLAS alone. (Different counts may differ in the last bits: LibTorch's own
  // reductions split by thread count; docs/performance.md.)
  void threadsGiveTheSameBytes() {
    QByteArray first;
    for (int run = 0; run < 2; ++run) {
      const QString out = at(run == 0 ? "t3a.safetensors" : "t3b.safetensors");
      const Result r = cli({"train", "--preset", "tiny", "--steps", "4", "--threads", "3",
                            "--quiet", "--out", out});
      QVERIFY2(r.code == 0, r.err.constData());
      QString state = out;
      state.replace(".safetensors", ".train.safetensors");
      const QByteArray both = read_all(out) + read_all(state);
      QVERIFY(both.size() > 1000);
      if (run == 0) first = both;
      else QVERIFY(both == first);
    }
  }

  void resume() {
    Result r = cli({"train", "--preset", "tiny", "--steps", "40", "--stop-after", "20", "--out",
                    "a.safetensors", "--quiet"});
    QVERIFY2(r.code == 0, r.err.constData());
    QCOMPARE(json_of(cli({"inspect", "a.safetensors", "--json"}).out)["step"].toInt(), 20);
    r = cli({"train", "--resume", "a.safetensors", "--out", "b.safetensors", "--quiet"});
    QVERIFY2(r.code == 0, r.err.constData());
    r = cli({"train", "--preset", "tiny", "--steps", "40", "--out", "c.safetensors", "--quiet"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QByteArray b = read_all(at("b.safetensors"));
    QVERIFY(!b.isEmpty());
    QVERIFY(b == read_all(at("c.safetensors")));
    QVERIFY(b != read_all(at("a.safetensors")));
    // Fixed settings cannot change on resume.
    QCOMPARE(
        cli({"train", "--resume", "a.safetensors", "--batch", "4", "--out", "d.safetensors"}).code,
        2);
  }

  void pythonReference() {
    if (run_program("/usr/bin/python3", {"-c", "import torch"}, dir_.path()).code != 0)
      QSKIP("/usr/bin/python3 has no torch");
    const QString script =
        qEnvironmentVariable("UNIPOOL_SOURCE_DIR") + "/scripts/reference/unipool_ref.py";
    QVERIFY2(QFile::exists(script), qPrintable(script));
    for (const char* seq : {"64", "100"}) {
      const Result ref = run_program(
          "/usr/bin/python3",
          {script, "eval", "--checkpoint", "m.safetensors", "--text", "text.txt", "--seq", seq},
          dir_.path());
      QVERIFY2(ref.code == 0, ref.err.constData());
      const Result ours = cli(
          {"eval", "--checkpoint", "m.safetensors", "--text", "text.txt", "--seq", seq, "--json"});
      QVERIFY2(ours.code == 0, ours.err.constData());
      const QJsonObject a = json_of(ref.out), b = json_of(ours.out);
      const double la = a["loss"].toDouble(), lb = b["loss"].toDouble();
      QVERIFY2(std::abs(la - lb) <= 1e-5 * std::abs(la),
               qPrintable(QString("%1 vs %2").arg(la, 0, 'g', 12).arg(lb, 0, 'g', 12)));
      QCOMPARE(b["n_targets"].toInt(), a["n_targets"].toInt());
      QCOMPARE(b["counts"].toArray(), a["counts"].toArray());
      QCOMPARE(b["router_c"].toDouble(), a["router_c"].toDouble());
    }
  }
};

QTEST_APPLESS_MAIN(TestCli)
#include "tst_cli.moc"
