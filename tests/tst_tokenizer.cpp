// Tokenizers from tokenizer.json against Hugging Face's own library: three real files (Qwen3's
// byte-level BPE with NFC, Mistral's sentencepiece-style BPE with byte_fallback, DeepSeek-V3's
// byte-level BPE with its split regexes and 818 added tokens) and 28 texts mixing languages,
// code, digits, whitespace runs, emoji and literal special tokens. The expected ids and
// decodes come from the `tokenizers` npm package (scripts/tokenizer-fixtures/regen.sh).
// (No raw string literals here: Qt 6.4's moc stops finding the class after one.)
#include <QtTest>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "unipool/tokenizer.h"

using unipool::Tokenizer;
using unipool::TokenizerError;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string data_dir() { return std::string(qgetenv("UNIPOOL_TOKENIZER_DIR").constData()); }

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

QString show(const std::vector<int32_t>& ids) {
  QStringList s;
  for (int32_t i : ids) s << QString::number(i);
  return s.join(u' ');
}

}  // namespace

class TestTokenizer : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void matchesTheReferenceLibrary_data() {
    QTest::addColumn<QString>("name");
    for (const char* n : {"qwen3", "llama2", "deepseek_v3"}) QTest::newRow(n) << QString::fromLatin1(n);
  }

  void matchesTheReferenceLibrary() {
    QFETCH(QString, name);
    const std::string dir = data_dir();
    QVERIFY2(!dir.empty(), "UNIPOOL_TOKENIZER_DIR is not set");
    const auto tokenizer = Tokenizer::from_file(dir + "/" + name.toStdString() + ".tokenizer.json");
    const nlohmann::json expected =
        nlohmann::json::parse(read(std::string(qgetenv("UNIPOOL_SOURCE_DIR").constData()) +
                                   "/tests/data/tokenizers/expected_" + name.toStdString() + ".json"));
    int cases = 0;
    for (const auto& c : expected["cases"]) {
      const std::string text = c["text"].get<std::string>();
      const auto plain = tokenizer->encode(text, false);
      const auto special = tokenizer->encode(text, true);
      const QByteArray what = QByteArray::fromStdString(text.substr(0, 40));
      QVERIFY2(plain == ids_of(c["ids_plain"]),
               qPrintable(QString::fromUtf8(what) + QStringLiteral("\n got      ") + show(plain) +
                          QStringLiteral("\n expected ") + show(ids_of(c["ids_plain"]))));
      QVERIFY2(special == ids_of(c["ids_special"]), what.constData());
      QCOMPARE(QString::fromStdString(tokenizer->decode(plain)),
               QString::fromStdString(c["decoded"].get<std::string>()));
      QCOMPARE(QString::fromStdString(tokenizer->decode(special, true)),
               QString::fromStdString(c["decoded_skip_special"].get<std::string>()));
      ++cases;
    }
    QCOMPARE(cases, 28);
  }

  void theTemplateAddsBosOnlyWhenAsked() {
    // Mistral's template puts <s> (id 1) first; Qwen's post-processor adds nothing.
    const auto mistral = Tokenizer::from_file(data_dir() + "/llama2.tokenizer.json");
    QCOMPARE(mistral->encode("Hi", true).front(), 1);
    QVERIFY(mistral->encode("Hi", false).front() != 1);
    const auto qwen = Tokenizer::from_file(data_dir() + "/qwen3.tokenizer.json");
    QCOMPARE(qwen->encode("Hi", true), qwen->encode("Hi", false));
  }

  void aModelFolderAddsTheBosItsConfigAsksFor() {
    // DeepSeek-V3: tokenizer.json adds nothing; tokenizer_config.json says add_bos_token.
    QTemporaryDir dir;
    QFile::copy(QString::fromStdString(data_dir() + "/deepseek_v3.tokenizer.json"),
                dir.filePath(QStringLiteral("tokenizer.json")));
    const std::string folder = dir.path().toStdString();
    const auto plain = Tokenizer::from_model_folder(folder);
    QCOMPARE(plain->extra_bos(), -1);  // no tokenizer_config.json: the library's ids
    QFile config(dir.filePath(QStringLiteral("tokenizer_config.json")));
    QVERIFY(config.open(QIODevice::WriteOnly));
    config.write("{\"add_bos_token\": true, \"bos_token\": {\"content\": "
                 "\"<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>\"}}");
    config.close();
    const auto with_bos = Tokenizer::from_model_folder(folder);
    QCOMPARE(with_bos->extra_bos(), 0);
    const auto ids = with_bos->encode("Hello", true);
    QCOMPARE(ids.front(), 0);
    QCOMPARE(std::vector<int32_t>(ids.begin() + 1, ids.end()), with_bos->encode("Hello", false));
    // Mistral's template already starts with <s>: no second one.
    QTemporaryDir mistral;
    QFile::copy(QString::fromStdString(data_dir() + "/llama2.tokenizer.json"),
                mistral.filePath(QStringLiteral("tokenizer.json")));
    QFile c2(mistral.filePath(QStringLiteral("tokenizer_config.json")));
    QVERIFY(c2.open(QIODevice::WriteOnly));
    c2.write("{\"add_bos_token\": true, \"bos_token\": \"<s>\"}");
    c2.close();
    const auto m = Tokenizer::from_model_folder(mistral.path().toStdString());
    QCOMPARE(m->encode("Hi", true)[1] != 1, true);
    QCOMPARE(m->encode("Hi", true).front(), 1);
  }

  void aLongTextWithoutPreTokenizerStaysFast() {
    // Mistral's file has no pre-tokenizer: 250 KB of text is one BPE word. A rescan of all
    // pairs per merge made this quadratic (minutes); the merge heap does it in about a second.
    const auto mistral = Tokenizer::from_file(data_dir() + "/llama2.tokenizer.json");
    std::string text;
    while (text.size() < 250000)
      text += "Die Stra\xc3\x9f" "e in M\xc3\xbc" "nchen, 3.14159 und def f(x): return x * 2. ";
    const auto ids = mistral->encode(text, false);
    QVERIFY(ids.size() > 60000 && ids.size() < 200000);
    QCOMPARE(mistral->decode(ids), text);  // the round trip (Strip removes the prepended space)
  }

  void invalidUtf8IsReadAsReplacementCharacters() {
    const auto qwen = Tokenizer::from_file(data_dir() + "/qwen3.tokenizer.json");
    QCOMPARE(qwen->encode("a\xff" "b", false), qwen->encode("a\xEF\xBF\xBD" "b", false));
  }

  void refusesWhatItCannotRun_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("words");
    QTest::newRow("not json") << "{\"model\": " << "not a JSON object";
    QTest::newRow("no model") << "{}" << "no \"model\"";
    QTest::newRow("unigram") << "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}" << "Unigram";
    QTest::newRow("merge outside vocab")
        << "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}"
        << "not in the vocabulary";
    QTest::newRow("unknown normalizer")
        << "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}"
        << "BertNormalizer";
    QTest::newRow("bad regex")
        << "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"([\"}, \"behavior\": \"Isolated\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}"
        << "does not compile";
    QTest::newRow("dropout")
        << "{\"model\": {\"type\": \"BPE\", \"dropout\": 0.1, \"vocab\": {}, \"merges\": []}}" << "dropout";
  }

  void refusesWhatItCannotRun() {
    QFETCH(QString, json);
    QFETCH(QString, words);
    try {
      Tokenizer::from_json(json.toStdString(), "test.json");
      QFAIL("no error");
    } catch (const TokenizerError& e) {
      QVERIFY2(QString::fromUtf8(e.what()).contains(words), e.what());
    }
  }

  void mergesGoByRankThenLeftmost() {
    // "aaa": the pair (a, a) has rank 0; the leftmost is merged first -> "aa" "a".
    const auto t = Tokenizer::from_json(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"aa\": 1, \"b\": 2, \"ab\": 3, \"aab\": 4},             \"merges\": [\"a b\", \"a a\", \"aa b\"]}}",
        "test");
    QCOMPARE(t->encode("aaa", false), (std::vector<int32_t>{1, 0}));
    // "aab": (a, b) has the lower rank, so a + ab, not aa + b.
    QCOMPARE(t->encode("aab", false), (std::vector<int32_t>{0, 3}));
  }
};

QTEST_APPLESS_MAIN(TestTokenizer)
#include "tst_tokenizer.moc"
