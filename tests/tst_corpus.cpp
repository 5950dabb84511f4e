// Tests for the built-in synthetic corpus, user text loading and the train/valid split.
#include <sys/stat.h>
#include <unistd.h>

#include <QtTest/QtTest>
#include <cctype>
#include <chrono>

#include "unipool/corpus.h"

using unipool::DataError;
using unipool::LabelledText;

namespace {

// Complete ('\n'-terminated) lines of every byte run labelled `domain`. Documents end in '\n',
// so runs never start mid-line; only the corpus's cut-off tail can be incomplete and is skipped.
std::vector<std::string> lines_of(const LabelledText& t, int domain) {
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < t.text.size(); ++i) {
    if (t.domain[i] != domain) {
      cur.clear();
      continue;
    }
    if (t.text[i] == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += t.text[i];
    }
  }
  return lines;
}

void write_file(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly));
  QCOMPARE(f.write(bytes), bytes.size());
}

QString error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return QString::fromUtf8(e.what());
  }
  return QString();
}

}  // namespace

class TestCorpus : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void lengths() {
    for (size_t n : {size_t{0}, size_t{1}, size_t{99}, size_t{1000}, size_t{12345}}) {
      const LabelledText t = unipool::generate_builtin_corpus(n, 7);
      QCOMPARE(t.text.size(), n);
      QCOMPARE(t.domain.size(), n);
      QVERIFY(t.domain_names == unipool::builtin_domain_names());
    }
    const std::vector<std::string> want = {"prose", "arithmetic", "code", "records", "dna"};
    QVERIFY(unipool::builtin_domain_names() == want);
  }

  void oversizedCorpusIsRejected() {
    // SIZE_MAX once wrapped the reserve() and grew the text until memory ran out.
    for (size_t n : {(size_t(1) << 30) + 1, SIZE_MAX}) {
      QString msg = "no error";
      try {
        unipool::generate_builtin_corpus(n, 1);
      } catch (const unipool::DataError& e) {
        msg = QString::fromStdString(e.what());
      }
      QVERIFY2(msg.contains("exceeds the maximum"), qPrintable(msg));
    }
  }

  void determinism() {
    const LabelledText a = unipool::generate_builtin_corpus(50000, 42);
    const LabelledText b = unipool::generate_builtin_corpus(50000, 42);
    const LabelledText c = unipool::generate_builtin_corpus(50000, 43);
    QVERIFY(a.text == b.text);
    QVERIFY(a.domain == b.domain);
    QVERIFY(a.text != c.text);
    // A shorter corpus is a prefix of a longer one.
    const LabelledText p = unipool::generate_builtin_corpus(20000, 42);
    QVERIFY(a.text.compare(0, 20000, p.text) == 0);
    // Pin the stream so a platform or refactoring change that alters the bytes is noticed.
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char ch : unipool::generate_builtin_corpus(4096, 1).text) {
      h = (h ^ ch) * 1099511628211ull;
    }
    QCOMPARE(h, uint64_t{0x177990bf0b6dd008});
  }

  void domainShares() {
    const LabelledText t = unipool::generate_builtin_corpus(200 * 1024, 5);
    std::vector<size_t> count(5, 0);
    for (uint8_t d : t.domain) {
      QVERIFY(d < 5);
      ++count[d];
    }
    for (int d = 0; d < 5; ++d) {
      const double share = static_cast<double>(count[d]) / t.text.size();
      QVERIFY2(share >= 0.10 && share <= 0.30,
               qPrintable(QString("domain %1 share %2").arg(d).arg(share)));
    }
  }

  void labelsConstantPerDocument() {
    const LabelledText t = unipool::generate_builtin_corpus(100000, 11);
    size_t run_start = 0;
    for (size_t i = 1; i <= t.text.size(); ++i) {
      if (i < t.text.size() && t.domain[i] == t.domain[i - 1]) continue;
      // A label may only change right after a document's final newline.
      if (i < t.text.size()) QCOMPARE(t.text[i - 1], '\n');
      if (i < t.text.size()) QVERIFY2(i - run_start >= 100, "document shorter than 100 bytes");
      run_start = i;
    }
  }

  void arithmeticIsCorrect() {
    const LabelledText t = unipool::generate_builtin_corpus(200000, 3);
    const QRegularExpression re("^(\\d+)([-+*/])(\\d+)=(\\d+)$");
    const std::vector<std::string> lines = lines_of(t, 1);
    QVERIFY(lines.size() > 500);
    for (const std::string& line : lines) {
      const auto m = re.match(QString::fromStdString(line));
      QVERIFY2(m.hasMatch(), line.c_str());
      const qint64 a = m.captured(1).toLongLong(), b = m.captured(3).toLongLong();
      const qint64 c = m.captured(4).toLongLong();
      const QChar op = m.captured(2)[0];
      if (op == '+') QVERIFY2(a + b == c, line.c_str());
      if (op == '-') QVERIFY2(a - b == c, line.c_str());
      if (op == '*') QVERIFY2(a * b == c, line.c_str());
      if (op == '/') QVERIFY2(b != 0 && a == b * c, line.c_str());
    }
  }

  void dnaOnlyAcgt() {
    const LabelledText t = unipool::generate_builtin_corpus(200000, 4);
    const std::vector<std::string> lines = lines_of(t, 4);
    QVERIFY(lines.size() > 100);
    for (const std::string& line : lines) {
      QCOMPARE(line.size(), size_t{60});
      QVERIFY2(line.find_first_not_of("ACGT") == std::string::npos, line.c_str());
    }
  }

  void domainsLookDifferent() {
    auto sample = [](int d) { return unipool::builtin_domain_sample(d, 20000, 9); };
    const std::string prose = sample(0), arith = sample(1), code = sample(2);
    const std::string records = sample(3), dna = sample(4);
    QVERIFY(prose.find_first_of("0123456789{};=") == std::string::npos);
    QVERIFY(prose.find(". ") != std::string::npos &&
            std::isupper(static_cast<unsigned char>(prose[0])));
    QVERIFY(arith.find_first_not_of("0123456789+-*/=\n") == std::string::npos);
    QVERIFY(code.find("for (") != std::string::npos && code.find("if (") != std::string::npos);
    QVERIFY(code.find("\n  ") != std::string::npos && code.find(";\n") != std::string::npos);
    QVERIFY(records.find("{\"id\": ") != std::string::npos);
    QVERIFY(records.find(" city=") != std::string::npos);
    QVERIFY(dna.find_first_not_of("ACGT\n") == std::string::npos);
  }

  void domainSample() {
    for (int d = 0; d < 5; ++d) {
      const std::string s = unipool::builtin_domain_sample(d, 3000, 1);
      QVERIFY(s.size() >= 3000 && s.size() < 3600);
      QCOMPARE(s.back(), '\n');
      QVERIFY(s == unipool::builtin_domain_sample(d, 3000, 1));
    }
    QVERIFY(unipool::builtin_domain_sample(2, 0, 1).empty());
    QVERIFY(error_of([] { unipool::builtin_domain_sample(5, 10, 1); }).contains("out of range"));
    QVERIFY(error_of([] { unipool::builtin_domain_sample(-1, 10, 1); }).contains("out of range"));
  }

  void speed() {
    const auto t0 = std::chrono::steady_clock::now();
    const LabelledText t = unipool::generate_builtin_corpus(8 << 20, 2);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    qInfo("generated %zu bytes in %.3f s (%.1f MB/s)", t.text.size(), s, t.text.size() / s / 1e6);
    QVERIFY(t.text.size() / s > 1e6);  // loose: must hold even in sanitizer builds
  }

  void loadFile() {
    QTemporaryDir dir;
    const QString path = dir.filePath("notes.txt");
    write_file(path, "hello\nworld");
    const LabelledText t = unipool::load_text_path(path.toStdString());
    QCOMPARE(t.text, std::string("hello\nworld"));
    QCOMPARE(t.domain.size(), t.text.size());
    QVERIFY(std::all_of(t.domain.begin(), t.domain.end(),
                        [](uint8_t d) { return d == unipool::kUnknownDomain; }));
    QVERIFY(t.domain_names.empty());
  }

  void loadFolder() {
    QTemporaryDir dir;
    write_file(dir.filePath("b.txt"), "bee");
    write_file(dir.filePath("a.txt"), "ay\n");
    write_file(dir.filePath("c.md"), "ignored");
    write_file(dir.filePath("d.txt.bak"), "ignored");
    QVERIFY(QDir(dir.path()).mkdir("sub"));
    write_file(dir.filePath("sub/0.txt"), "not recursive");
    QVERIFY(QDir(dir.path()).mkdir("e.txt"));  // a folder named like a text file
    const LabelledText t = unipool::load_text_path(dir.path().toStdString());
    QCOMPARE(t.text, std::string("ay\n\nbee"));
    QCOMPARE(t.domain.size(), t.text.size());
  }

  void loadErrors() {
    QTemporaryDir dir;
    const std::string missing = dir.filePath("nope.txt").toStdString();
    QString msg = error_of([&] { unipool::load_text_path(missing); });
    QVERIFY2(msg.contains("does not exist") && msg.contains("nope.txt"), qPrintable(msg));

    write_file(dir.filePath("empty.txt"), "");
    msg = error_of([&] { unipool::load_text_path(dir.filePath("empty.txt").toStdString()); });
    QVERIFY2(msg.contains("file is empty (0 bytes)"), qPrintable(msg));
    // A folder whose only .txt is empty has no text either.
    msg = error_of([&] { unipool::load_text_path(dir.path().toStdString()); });
    QVERIFY2(msg.contains("all .txt files in the folder are empty"), qPrintable(msg));

    QVERIFY(QDir(dir.path()).mkdir("notext"));
    write_file(dir.filePath("notext/readme.md"), "x");
    msg = error_of([&] { unipool::load_text_path(dir.filePath("notext").toStdString()); });
    QVERIFY2(msg.contains("folder contains no .txt files"), qPrintable(msg));

    msg = error_of([] { unipool::load_text_path("/dev/null"); });
    QVERIFY2(msg.contains("not a regular file or folder"), qPrintable(msg));

    const QString locked = dir.filePath("locked.txt");
    write_file(locked, "secret");
    ::chmod(locked.toLocal8Bit().constData(), 0);
    if (::geteuid() != 0) {  // root can read it anyway
      msg = error_of([&] { unipool::load_text_path(locked.toStdString()); });
      QVERIFY2(msg.contains("cannot read file: Permission denied"), qPrintable(msg));
    }
  }

  void split() {
    const LabelledText all = unipool::generate_builtin_corpus(1000, 8);
    const unipool::TrainValidSplit s = unipool::split_train_valid(all, 0.1, 50);
    QCOMPARE(s.train.text.size(), size_t{900});
    QCOMPARE(s.valid.text.size(), size_t{100});
    QCOMPARE(s.train.domain.size(), size_t{900});
    QCOMPARE(s.valid.domain.size(), size_t{100});
    QVERIFY(s.train.text + s.valid.text == all.text);
    QVERIFY(std::equal(s.valid.domain.begin(), s.valid.domain.end(), all.domain.begin() + 900));
    QVERIFY(s.train.domain_names == all.domain_names);
    QVERIFY(s.valid.domain_names == all.domain_names);
  }

  void splitErrors() {
    const LabelledText all = unipool::generate_builtin_corpus(150, 8);
    QString msg = error_of([&] { unipool::split_train_valid(all, 0.1, 100); });
    QVERIFY2(msg.contains("too short") && msg.contains("at least 100 bytes"), qPrintable(msg));
    QVERIFY2(msg.contains("about 1000 bytes"), qPrintable(msg));
    msg = error_of([&] { unipool::split_train_valid(all, 0.5, 100); });
    QVERIFY2(msg.contains("75 training and 75 validation"), qPrintable(msg));
    msg = error_of([&] { unipool::split_train_valid(all, 0.0, 1); });
    QVERIFY2(msg.contains("valid_fraction must be between 0 and 1"), qPrintable(msg));
    msg = error_of([&] { unipool::split_train_valid(all, 1.0, 1); });
    QVERIFY2(msg.contains("valid_fraction"), qPrintable(msg));
  }
};

QTEST_APPLESS_MAIN(TestCorpus)
#include "tst_corpus.moc"
