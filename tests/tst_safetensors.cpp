// Tests for the strict safetensors reader and the atomic writer.
#include <sys/stat.h>

#include <QtTest/QtTest>
#include <cstring>
#include <optional>
#include <random>

#include "unipool/safetensors.h"

using unipool::DType;
using unipool::FormatError;
using unipool::TensorRecord;

namespace {

TensorRecord make(const std::string& name, DType dtype, std::vector<int64_t> shape,
                  uint8_t seed = 1) {
  TensorRecord t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(static_cast<size_t>(t.numel()) * unipool::dtype_size(dtype));
  for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = static_cast<uint8_t>(seed + i * 7);
  return t;
}

// A file image with an arbitrary header text and `data_bytes` zero bytes of data. `declared`
// overrides the header length field so the length checks can be exercised.
QByteArray raw(const std::string& header, size_t data_bytes,
               std::optional<uint64_t> declared = std::nullopt) {
  const uint64_t n = declared.value_or(header.size());
  QByteArray out;
  for (int i = 0; i < 8; ++i) out.append(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(header.data(), static_cast<qsizetype>(header.size()));
  out.append(QByteArray(static_cast<qsizetype>(data_bytes), '\0'));
  return out;
}

// Copies into an exactly sized heap block so sanitizers catch any read past the end.
unipool::SafetensorsFile parse(const uint8_t* p, size_t n) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[n == 0 ? 1 : n]);
  if (n > 0) std::memcpy(copy.get(), p, n);
  return unipool::parse_safetensors(copy.get(), n, "mem");
}

const char* kOne = R"("dtype":"F32","shape":[1])";

std::string entry(const std::string& offsets) {
  return std::string("{") + kOne + ",\"data_offsets\":" + offsets + "}";
}

std::vector<uint8_t> small_file() {
  return unipool::serialize_safetensors(
      {{"k", "v"}}, {make("w", DType::F32, {2, 2}), make("b", DType::I16, {3})});
}

void expect_same(const TensorRecord& a, const TensorRecord& b) {
  QCOMPARE(a.name, b.name);
  QVERIFY(a.dtype == b.dtype);
  QVERIFY(a.shape == b.shape);
  QVERIFY(a.bytes == b.bytes);
}

}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void dtypes() {
    const DType all[] = {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64,
                         DType::I32, DType::I16, DType::I8,   DType::U8,  DType::BOOL};
    const size_t sizes[] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};
    for (size_t i = 0; i < 10; ++i) {
      QCOMPARE(unipool::dtype_size(all[i]), sizes[i]);
      QVERIFY(unipool::parse_dtype(unipool::dtype_name(all[i])) == all[i]);
    }
    QCOMPARE(std::string(unipool::dtype_name(DType::BF16)), std::string("BF16"));
    QVERIFY(!unipool::parse_dtype("f32").has_value());
    QVERIFY(!unipool::parse_dtype("").has_value());
  }

  void roundTripMemory() {
    const std::vector<TensorRecord> in = {
        make("layer.0.weight", DType::F32, {2, 3}),
        make("bf", DType::BF16, {4}, 9),
        make("scalar", DType::I64, {}, 3),
        make("empty", DType::U8, {0}),
        make("mask", DType::BOOL, {3}),
        make("f64", DType::F64, {1, 1, 2}),
        make("i8", DType::I8, {5}),
        make("empty2", DType::F16, {0, 4}),
        make("i32", DType::I32, {2}),
    };
    const std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "12"}};
    const std::vector<uint8_t> bytes = unipool::serialize_safetensors(meta, in);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);  // test host is little-endian
    QCOMPARE(n % 8, uint64_t{0});
    const unipool::SafetensorsFile f = parse(bytes.data(), bytes.size());
    QVERIFY(f.metadata == meta);
    QCOMPARE(f.tensors.size(), in.size());
    for (const TensorRecord& t : in) {
      const TensorRecord* got = f.find(t.name);
      QVERIFY2(got != nullptr, t.name.c_str());
      expect_same(*got, t);
    }
    QCOMPARE(f.find("scalar")->numel(), int64_t{1});
    QCOMPARE(f.find("empty2")->numel(), int64_t{0});
    QVERIFY(f.find("missing") == nullptr);
    // No metadata at all also round-trips.
    const std::vector<uint8_t> bare = unipool::serialize_safetensors({}, {});
    QCOMPARE(bare.size(), size_t{16});
    QVERIFY(parse(bare.data(), bare.size()).tensors.empty());
  }

  void roundTripFile() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string path = dir.filePath("model.safetensors").toStdString();
    const std::vector<TensorRecord> v1 = {make("a", DType::F32, {4}), make("s", DType::I32, {})};
    unipool::write_safetensors_atomic(path, {{"v", "1"}}, v1);
    unipool::SafetensorsFile f = unipool::read_safetensors(path);
    QCOMPARE(f.metadata.at("v"), std::string("1"));
    QCOMPARE(f.tensors.size(), size_t{2});
    expect_same(f.tensors[0], v1[0]);
    expect_same(f.tensors[1], v1[1]);
    // Overwrite in place; no temporary files may remain.
    const std::vector<TensorRecord> v2 = {make("b", DType::BF16, {2, 2}, 5)};
    unipool::write_safetensors_atomic(path, {}, v2);
    f = unipool::read_safetensors(path);
    QVERIFY(f.metadata.empty());
    QCOMPARE(f.tensors.size(), size_t{1});
    expect_same(f.tensors[0], v2[0]);
    const QStringList left =
        QDir(dir.path()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot);
    QCOMPARE(left, QStringList{"model.safetensors"});
  }

  void exactLayout() {
    TensorRecord t;
    t.name = "x";
    t.dtype = DType::F32;
    t.shape = {1};
    t.bytes = {1, 2, 3, 4};
    const std::string header =
        R"({"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})"
        " ";  // 79 bytes of JSON + 1 space of padding
    QCOMPARE(header.size(), size_t{80});
    std::vector<uint8_t> want = {80, 0, 0, 0, 0, 0, 0, 0};
    want.insert(want.end(), header.begin(), header.end());
    want.insert(want.end(), {1, 2, 3, 4});
    QVERIFY(unipool::serialize_safetensors({{"a", "b"}}, {t}) == want);
  }

  void offsetOrder() {
    // Header lists "a" first but its data comes second: tensors come back in offset order.
    const std::string h = "{\"a\":" + entry("[4,8]") + ",\"b\":" + entry("[0,4]") + "}";
    const QByteArray file = raw(h, 8);
    const auto f = parse(reinterpret_cast<const uint8_t*>(file.data()), file.size());
    QCOMPARE(f.tensors.size(), size_t{2});
    QCOMPARE(f.tensors[0].name, std::string("b"));
    QCOMPARE(f.tensors[1].name, std::string("a"));
  }

  void corrupt_data() {
    QTest::addColumn<QByteArray>("file");
    QTest::addColumn<QString>("phrase");
    const std::string e4 = entry("[0,4]");
    auto row = [](const char* name, const QByteArray& file, const char* phrase) {
      QTest::newRow(name) << file << QString(phrase);
    };
    row("short file", QByteArray("\x01\x02\x03", 3), "shorter than 8 bytes");
    row("empty file", QByteArray(), "shorter than 8 bytes");
    row("zero header length", raw("{}", 0, 0), "header length is 0");
    row("header past eof", raw("{}", 0, 100), "extends past end of file");
    row("header over limit", raw("{}", 0, uint64_t{200} << 20), "exceeds the 100 MiB limit");
    row("header 2^64-1", raw("{}", 0, ~uint64_t{0}), "exceeds the 100 MiB limit");
    row("not json", raw("{abc", 0), "not valid JSON");
    row("trailing garbage", raw("{} x", 0), "not valid JSON");
    row("bad utf8", raw("{\"\xff\":1}", 0), "not valid JSON");
    row("not object", raw("[1, 2]", 0), "must be a JSON object");
    row("too deep", raw("[[[[[[[[[[[[]]]]]]]]]]]]", 0), "nested too deeply");
    row("entry not object", raw(R"({"a": 5})", 0), "entry for tensor \"a\" is not an object");
    row("missing dtype", raw(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4),
        "missing key \"dtype\"");
    row("missing shape", raw(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4),
        "missing key \"shape\"");
    row("missing offsets", raw(R"({"a":{"dtype":"F32","shape":[1]}})", 4),
        "missing key \"data_offsets\"");
    row("extra key", raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4),
        "unexpected key \"x\"");
    row("dtype not string", raw(R"({"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}})", 4),
        "\"dtype\" must be a string");
    row("unknown dtype", raw(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1),
        "unknown dtype \"F8\"");
    row("lowercase dtype", raw(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4),
        "unknown dtype");
    const char* shape_msg = "\"shape\" must be an array of non-negative integers";
    auto shaped = [](const std::string& shape) {
      return raw(R"({"a":{"dtype":"U8","shape":)" + shape + R"(,"data_offsets":[0,0]}})", 0);
    };
    row("shape not array", shaped("4"), shape_msg);
    row("shape negative", shaped("[-1]"), shape_msg);
    row("shape float", shaped("[1.5]"), shape_msg);
    row("shape string", shaped("[\"2\"]"), shape_msg);
    row("shape bool", shaped("[true]"), shape_msg);
    row("shape above int64", shaped("[18446744073709551615]"), shape_msg);
    row("shape 1e30", shaped("[1e30]"), shape_msg);
    row("numel overflow", shaped("[4294967296,4294967296]"), "element count overflows int64");
    row("bytes overflow",
        raw(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 0),
        "byte size overflows int64");
    const char* offs_msg = "\"data_offsets\" must be an array of two non-negative integers";
    row("offsets not array", raw("{\"a\":" + entry("4") + "}", 4), offs_msg);
    row("offsets three", raw("{\"a\":" + entry("[0,4,4]") + "}", 4), offs_msg);
    row("offsets one", raw("{\"a\":" + entry("[4]") + "}", 4), offs_msg);
    row("offsets negative", raw("{\"a\":" + entry("[-4,0]") + "}", 4), offs_msg);
    row("offsets float", raw("{\"a\":" + entry("[0,4.0]") + "}", 4), offs_msg);
    row("begin after end", raw("{\"a\":" + entry("[4,0]") + "}", 4), "begin 4 > end 0");
    row("end beyond buffer", raw("{\"a\":" + entry("[4,8]") + "}", 4), "is beyond the data buffer");
    row("length mismatch", raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
        "does not match shape and dtype");
    row("overlap", raw("{\"a\":" + e4 + ",\"b\":" + entry("[2,6]") + "}", 8), "overlaps");
    row("hole", raw("{\"a\":" + e4 + ",\"b\":" + entry("[8,12]") + "}", 12), "hole of 4 bytes");
    row("trailing data", raw("{\"a\":" + e4 + "}", 8), "4 trailing bytes");
    row("data without tensors", raw("{}", 4), "trailing bytes");
    row("duplicate tensor", raw("{\"a\":" + e4 + ",\"a\":" + e4 + "}", 4), "duplicate key \"a\"");
    row("duplicate entry key",
        raw(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4),
        "duplicate key \"dtype\"");
    row("metadata not object", raw(R"({"__metadata__":"x"})", 0), "__metadata__ must be an object");
    row("metadata value", raw(R"({"__metadata__":{"k":1}})", 0),
        "__metadata__ value for \"k\" must be a string");
    row("empty name", raw("{\"\":" + e4 + "}", 4), "empty tensor name");
  }

  void corrupt() {
    QFETCH(QByteArray, file);
    QFETCH(QString, phrase);
    try {
      parse(reinterpret_cast<const uint8_t*>(file.constData()), file.size());
      QFAIL("expected FormatError");
    } catch (const FormatError& e) {
      const QString msg = QString::fromUtf8(e.what());
      QVERIFY2(msg.startsWith("mem: "), qPrintable(msg));
      QVERIFY2(msg.contains(phrase), qPrintable(msg));
    }
  }

  void truncationNeverCrashes() {
    const std::vector<uint8_t> good = small_file();
    parse(good.data(), good.size());  // the full file is fine
    for (size_t len = 0; len < good.size(); ++len) {
      bool threw = false;
      try {
        parse(good.data(), len);
      } catch (const FormatError&) {
        threw = true;
      }
      QVERIFY2(threw, qPrintable(QString("length %1 parsed").arg(len)));
    }
  }

  void randomHeaderFlips() {
    const std::vector<uint8_t> good = small_file();
    uint64_t n = 0;
    std::memcpy(&n, good.data(), 8);
    std::mt19937_64 rng(20240611);
    int ok = 0, rejected = 0;
    for (int iter = 0; iter < 5000; ++iter) {
      std::vector<uint8_t> bad = good;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < flips; ++k) {
        const size_t pos = static_cast<size_t>(rng() % (8 + n));
        bad[pos] = static_cast<uint8_t>(rng() >> 56);
      }
      try {
        const auto f = parse(bad.data(), bad.size());
        size_t total = 0;
        for (const TensorRecord& t : f.tensors) total += t.bytes.size();
        QVERIFY(total <= bad.size());
        ++ok;
      } catch (const FormatError&) {
        ++rejected;
      }
    }
    // Digit-only flips keep the JSON valid and so reach the semantic checks instead.
    std::vector<size_t> digits;
    for (size_t i = 8; i < 8 + n; ++i) {
      if (good[i] >= '0' && good[i] <= '9') digits.push_back(i);
    }
    for (int iter = 0; iter < 2000; ++iter) {
      std::vector<uint8_t> bad = good;
      bad[digits[rng() % digits.size()]] = static_cast<uint8_t>('0' + rng() % 10);
      try {
        parse(bad.data(), bad.size());
        ++ok;
      } catch (const FormatError&) {
        ++rejected;
      }
    }
    QVERIFY(rejected > 0);
    qInfo("random flips: %d parsed, %d rejected", ok, rejected);
  }

  void atomicWriteReadOnlyDir() {
    QTemporaryDir dir;
    const QString qpath = dir.filePath("m.safetensors");
    const std::string path = qpath.toStdString();
    unipool::write_safetensors_atomic(path, {}, {make("a", DType::F32, {2})});
    QFile old(qpath);
    QVERIFY(old.open(QIODevice::ReadOnly));
    const QByteArray old_bytes = old.readAll();
    old.close();
    QVERIFY(::chmod(dir.path().toLocal8Bit().constData(), 0555) == 0);
    QFile probe(dir.filePath("probe"));
    if (probe.open(QIODevice::WriteOnly)) {  // root ignores directory permissions
      probe.close();
      probe.remove();
      ::chmod(dir.path().toLocal8Bit().constData(), 0755);
      QSKIP("running with privileges that bypass directory permissions");
    }
    QString msg;
    try {
      unipool::write_safetensors_atomic(path, {}, {make("b", DType::F64, {3})});
    } catch (const std::runtime_error& e) {
      msg = e.what();
    }
    ::chmod(dir.path().toLocal8Bit().constData(), 0755);
    QVERIFY2(msg.contains("cannot create temporary file"), qPrintable(msg));
    QVERIFY2(msg.contains("Permission denied"), qPrintable(msg));
    QVERIFY(old.open(QIODevice::ReadOnly));
    QCOMPARE(old.readAll(), old_bytes);
  }

  void atomicWriteOntoDirectory() {
    QTemporaryDir dir;
    QVERIFY(QDir(dir.path()).mkdir("target"));
    QFile keep(dir.filePath("target/keep"));
    QVERIFY(keep.open(QIODevice::WriteOnly));
    keep.write("x");
    keep.close();
    QString msg;
    try {
      unipool::write_safetensors_atomic(dir.filePath("target").toStdString(), {},
                                        {make("a", DType::F32, {2})});
    } catch (const std::runtime_error& e) {
      msg = e.what();
    }
    QVERIFY2(msg.contains("rename failed"), qPrintable(msg));
    QVERIFY(QFileInfo(dir.filePath("target")).isDir());
    QVERIFY(QFileInfo::exists(dir.filePath("target/keep")));
    const QStringList left =
        QDir(dir.path()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot);
    QCOMPARE(left, QStringList{"target"});  // the temporary file was removed
  }

  void atomicWriteMissingParent() {
    QTemporaryDir dir;
    QString msg;
    try {
      unipool::write_safetensors_atomic(dir.filePath("nope/m.safetensors").toStdString(), {}, {});
    } catch (const std::runtime_error& e) {
      msg = e.what();
    }
    QVERIFY2(msg.contains("No such file or directory"), qPrintable(msg));
  }

  void writerRejects_data() {
    QTest::addColumn<int>("which");
    QTest::addColumn<QString>("phrase");
    QTest::newRow("duplicate") << 0 << "duplicate tensor name \"a\"";
    QTest::newRow("bad size") << 1 << "has 3 bytes but shape and dtype F32 need 8";
    QTest::newRow("reserved") << 2 << "is reserved";
    QTest::newRow("empty name") << 3 << "empty tensor name";
    QTest::newRow("negative dim") << 4 << "negative dimension";
    QTest::newRow("bad utf8") << 5 << "not valid UTF-8";
  }

  void writerRejects() {
    QFETCH(int, which);
    QFETCH(QString, phrase);
    std::vector<TensorRecord> ts = {make("a", DType::F32, {2})};
    std::map<std::string, std::string> meta;
    switch (which) {
      case 0:
        ts.push_back(make("a", DType::U8, {1}));
        break;
      case 1:
        ts[0].bytes.resize(3);
        break;
      case 2:
        ts[0].name = "__metadata__";
        break;
      case 3:
        ts[0].name.clear();
        break;
      case 4:
        ts[0].shape = {-2, -1};
        ts[0].bytes.resize(8);
        break;
      default:
        meta["k"] = "\xff\xfe";
        break;
    }
    try {
      unipool::serialize_safetensors(meta, ts);
      QFAIL("expected FormatError");
    } catch (const FormatError& e) {
      QVERIFY2(QString(e.what()).contains(phrase), e.what());
    }
  }

  void readErrors() {
    QTemporaryDir dir;
    const std::string missing = dir.filePath("absent.safetensors").toStdString();
    try {
      unipool::read_safetensors(missing);
      QFAIL("expected FormatError");
    } catch (const FormatError& e) {
      const QString msg = e.what();
      QVERIFY2(msg.startsWith(QString::fromStdString(missing)), e.what());
      QVERIFY2(msg.contains("cannot open file: No such file or directory"), e.what());
    }
    try {
      unipool::read_safetensors(dir.path().toStdString());
      QFAIL("expected FormatError");
    } catch (const FormatError& e) {
      QVERIFY2(QString(e.what()).contains("not a regular file"), e.what());
    }
    // A huge sparse file is refused by its size, before anything is allocated for it.
    const QString huge = dir.filePath("huge.safetensors");
    {
      QFile f(huge);
      QVERIFY(f.open(QIODevice::WriteOnly));
      QVERIFY(f.resize(qint64(20) << 30));
    }
    try {
      unipool::read_safetensors(huge.toStdString());
      QFAIL("expected FormatError");
    } catch (const FormatError& e) {
      QVERIFY2(QString(e.what()).contains("larger than the 16 GiB limit"), e.what());
    }
  }
};

QTEST_APPLESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
