// MoE checkpoints as people download them (moe_fixtures.h writes each family's layout):
// every layout is recognised with its sizes and parameter counts, the weights read back
// (BF16, F16, FP8 with block scales, fused experts, shards) equal what was stored, the
// sampled similarity agrees with an exact one computed here within the error it states, and
// every malformed checkpoint gets a message naming its problem.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "hf/dtype_convert.h"
#include "moe_fixtures.h"
#include "unipool/moe_checkpoint.h"
#include "unipool/redundancy.h"

using namespace unipool;

namespace {

// Every row of every part of an expert, as the reader gives them, concatenated.
std::vector<float> read_expert(const MoeCheckpoint& ck, const ExpertRef& e) {
  std::vector<float> out;
  for (const MatrixRef& m : e.parts) {
    std::vector<int64_t> rows(size_t(m.rows));
    for (int64_t i = 0; i < m.rows; ++i) rows[size_t(i)] = i;
    std::vector<float> part(size_t(m.numel()));
    ck.read_rows(m, rows, part.data());
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace

using fixtures::message_of;

class TestMoeCheckpoints : public QObject {
  Q_OBJECT
  QTemporaryDir dir_;
  int n_ = 0;
  QString fresh() { return dir_.filePath(QString("ck%1").arg(n_++)); }

 private Q_SLOTS:
  void elementConversionsMatchTheFormats() {
    // Values from the formats' definitions (OCP FP8, IEEE half, bfloat16).
    QCOMPARE(hf::e4m3_to_float(0x38), 1.0f);
    QCOMPARE(hf::e4m3_to_float(0xb8), -1.0f);
    QCOMPARE(hf::e4m3_to_float(0x7e), 448.0f);        // the largest finite
    QCOMPARE(hf::e4m3_to_float(0x08), 0.015625f);     // 2^-6, the smallest normal
    QCOMPARE(hf::e4m3_to_float(0x01), 0.001953125f);  // 2^-9, the smallest subnormal
    QVERIFY(std::isnan(hf::e4m3_to_float(0x7f)));
    QCOMPARE(hf::e5m2_to_float(0x3c), 1.0f);
    QCOMPARE(hf::e5m2_to_float(0x7b), 57344.0f);
    QCOMPARE(hf::half_to_float(0x3c00), 1.0f);
    QCOMPARE(hf::half_to_float(0x7bff), 65504.0f);
    QCOMPARE(hf::half_to_float(0x0001), std::ldexp(1.0f, -24));
    QVERIFY(std::isinf(hf::half_to_float(0xfc00)) && hf::half_to_float(0xfc00) < 0);
    QCOMPARE(hf::fnuz_to_float(0x40, 3, 8), 1.0f);  // E4M3FNUZ: bias 8
    QVERIFY(std::isnan(hf::fnuz_to_float(0x80, 3, 8)));
    const uint8_t bf16_one[2] = {0x80, 0x3f};
    float v = 0;
    hf::to_float(DType::BF16, bf16_one, 1, &v);
    QCOMPARE(v, 1.0f);
  }

  void recognisesEachFamily_data() {
    QTest::addColumn<QString>("family");
    QTest::addColumn<int>("dtype");
    QTest::addColumn<QString>("name");
    QTest::addColumn<int>("shared");
    QTest::newRow("Mixtral F32") << "mixtral" << int(DType::F32) << "Mixtral" << 0;
    QTest::newRow("OLMoE BF16") << "olmoe" << int(DType::BF16) << "OLMoE" << 0;
    QTest::newRow("Qwen2-MoE F16") << "qwen2_moe" << int(DType::F16) << "Qwen2-MoE" << 1;
    QTest::newRow("Qwen3-MoE BF16") << "qwen3_moe" << int(DType::BF16) << "Qwen3-MoE" << 0;
    QTest::newRow("DeepSeek-V3 FP8") << "deepseek_v3" << int(DType::F8_E4M3) << "DeepSeek-V3" << 1;
    QTest::newRow("GPT-OSS BF16") << "gpt_oss" << int(DType::BF16) << "GPT-OSS" << 0;
    QTest::newRow("Llama 4 BF16") << "llama4" << int(DType::BF16) << "Llama 4" << 1;
    QTest::newRow("transformers v5 fused") << "v5" << int(DType::BF16) << "Qwen3-MoE" << 0;
  }
  void recognisesEachFamily() {
    QFETCH(QString, family);
    QFETCH(int, dtype);
    QFETCH(QString, name);
    QFETCH(int, shared);
    fixtures::Spec s;
    s.family = family.toStdString();
    s.dtype = DType(dtype);
    const QString dir = fresh();
    const fixtures::Written w = fixtures::write(dir, s);
    const auto ck = MoeCheckpoint::open(dir.toStdString());
    const MoeArchitecture& a = ck->architecture();
    QCOMPARE(QString::fromStdString(a.family), name);
    QCOMPARE(a.n_layers, s.layers);
    QCOMPARE(a.moe_layers, int(w.moe_layers.size()));
    QCOMPARE(a.dense_layers, w.dense_layers);
    QCOMPARE(a.experts_per_bank, s.experts);
    QCOMPARE(a.shared_per_layer, shared);
    QCOMPARE(a.top_k, s.top_k);
    QCOMPARE(a.hidden, int64_t(s.hidden));
    QCOMPARE(a.expert_hidden, int64_t(s.inter));
    QCOMPARE(a.total_params, w.total_params);
    QCOMPARE(a.routed_params, w.routed_params);
    QCOMPARE(a.active_params,
             a.total_params - a.routed_params +
                 int64_t(a.moe_layers) * s.top_k * (w.routed_params / a.moe_layers / s.experts));
    for (size_t b = 0; b < a.banks.size(); ++b) {
      QCOMPARE(a.routers[b].layer, w.moe_layers[b]);
      for (int e = 0; e < s.experts; ++e) {
        const std::vector<float> got = read_expert(*ck, a.banks[b].experts[size_t(e)]);
        QVERIFY2(got == w.experts.at({w.moe_layers[b], e}),
                 qPrintable(QString("layer %1 expert %2 differs").arg(w.moe_layers[b]).arg(e)));
      }
    }
    if (s.dtype == DType::F8_E4M3) QVERIFY(!a.notes.empty());  // says it dequantised FP8
  }

  void shardsReadLikeOneFile() {
    fixtures::Spec s;
    s.family = "mixtral";
    s.dtype = DType::BF16;
    s.shards = 3;
    const QString dir = fresh();
    const fixtures::Written w = fixtures::write(dir, s);
    const auto ck = MoeCheckpoint::open(dir.toStdString());
    QCOMPARE(int(ck->files().size()), 3);
    QCOMPARE(ck->architecture().total_params, w.total_params);
    // One shard, opened on its own, opens the checkpoint it belongs to.
    const auto shard =
        MoeCheckpoint::open((dir + "/model-00002-of-00003.safetensors").toStdString());
    QCOMPARE(int(shard->files().size()), 3);
    QCOMPARE(shard->architecture().total_params, w.total_params);
    for (int e = 0; e < s.experts; ++e) {
      const ExpertRef& x = ck->architecture().banks[1].experts[size_t(e)];
      QVERIFY(read_expert(*ck, x) == w.experts.at({1, e}));
      for (const MatrixRef& m : x.parts) ck->release(m);  // pages given back, read again
      QVERIFY(read_expert(*ck, x) == w.experts.at({1, e}));
    }
  }

  void sampledSimilarityWithinItsStatedError() {
    fixtures::Spec s;
    s.family = "olmoe";
    s.layers = 4;
    s.experts = 8;
    s.hidden = 32;
    s.inter = 64;
    s.planted = {{0, 1, 2, 3, 0.8f}, {1, 5, 3, 2, 0.6f}};
    const QString dir = fresh();
    const fixtures::Written w = fixtures::write(dir, s);
    const auto ck = MoeCheckpoint::open(dir.toStdString());
    RedundancyOptions exact_options;
    exact_options.rows = 0;
    const RedundancyReport exact = analyse_redundancy(*ck, exact_options);
    QVERIFY(exact.exact);
    const int n = s.layers * s.experts;
    double worst = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const double c = cosine(w.experts.at({i / 8, i % 8}), w.experts.at({j / 8, j % 8}));
        worst = std::max(worst, std::abs(c - exact.similarity[size_t(i * n + j)]));
      }
    QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
    QCOMPARE(exact.top_pairs[0].bank_a, 0);
    QCOMPARE(exact.top_pairs[0].expert_a, 1);
    QCOMPARE(exact.top_pairs[0].bank_b, 2);
    QCOMPARE(exact.top_pairs[0].expert_b, 3);
    int64_t within = 0, cross = 0;
    for (int64_t x : exact.within) within += x;
    for (int64_t x : exact.cross) cross += x;
    QCOMPARE(within, int64_t(s.layers * 8 * 7 / 2));
    QCOMPARE(cross, int64_t(n * (n - 1) / 2) - within);
    double sum_within = 0, sum_cross = 0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j)
        (i / 8 == j / 8 ? sum_within : sum_cross) += exact.similarity[size_t(i * n + j)];
    QVERIFY(std::abs(exact.mean_within - sum_within / double(within)) < 1e-9);
    QVERIFY(std::abs(exact.mean_cross - sum_cross / double(cross)) < 1e-9);

    RedundancyOptions sampled_options;
    sampled_options.rows = 8;  // 8 of 64 and 8 of 32 rows: 1/6 of each expert
    const RedundancyReport sampled = analyse_redundancy(*ck, sampled_options);
    QVERIFY(!sampled.exact);
    QCOMPARE(sampled.values_sampled, int64_t(8 * 32 * 2 + 8 * 64));
    QVERIFY(sampled.standard_error > 0);
    double sum = 0, max = 0;
    int pairs = 0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) {
        const double d =
            sampled.similarity[size_t(i * n + j)] - exact.similarity[size_t(i * n + j)];
        sum += d * d;
        max = std::max(max, std::abs(d));
        ++pairs;
      }
    const double rms = std::sqrt(sum / pairs);
    qInfo("sampled 1/6 of each expert: rms error %.4f, max %.4f, stated standard error %.4f", rms,
          max, sampled.standard_error);
    QVERIFY(rms <= 1.5 * sampled.standard_error && rms >= sampled.standard_error / 1.5);
    QVERIFY(max <= 5 * sampled.standard_error);
    QCOMPARE(sampled.top_pairs[0].bank_b, 2);
    QCOMPARE(sampled.top_pairs[0].expert_b, 3);
    // Norms: the exact ones are the stored weights' Frobenius norms.
    for (int i = 0; i < n; ++i) {
      double q = 0;
      for (float x : w.experts.at({i / 8, i % 8})) q += double(x) * x;
      QVERIFY(std::abs(exact.norms[size_t(i)] - std::sqrt(q)) < 1e-4);
    }
    QCOMPARE(int(sampled.router_layers.size()), s.layers);
    QCOMPARE(sampled.router_similarity[0], 1.0f);  // a router against itself
  }

  void ownCheckpointsAreBanksOfThePool() {
    const QString cli = qEnvironmentVariable("UNIPOOL_CLI");
    QVERIFY(QFile::exists(cli));
    for (const QString preset : {"default", "vanilla"}) {
      const QString path = dir_.filePath(preset + ".safetensors");
      QProcess p;
      p.start(cli, {"train", "--preset", preset, "--steps", "2", "--batch", "2", "--seq", "16",
                    "--quiet", "--out", path});
      QVERIFY(p.waitForFinished(60000) && p.exitCode() == 0);
      const auto ck = MoeCheckpoint::open(path.toStdString());
      const MoeArchitecture& a = ck->architecture();
      QVERIFY(QString::fromStdString(a.family).startsWith(QStringLiteral("UniPool Studio: ")));
      QCOMPARE(int(a.routers.size()), 6);
      QCOMPARE(int(a.banks.size()), preset == "default" ? 1 : 6);
      QCOMPARE(a.pool_shared, preset == "default");
      // Expert e of bank b is pool entry b * Mg + e of each pool tensor.
      const SafetensorsFile f = read_safetensors(path.toStdString());
      const TensorRecord* gate = f.find("pool.w_gate");
      const int64_t h = a.expert_hidden, d = a.hidden, Mg = a.experts_per_bank;
      const int b = int(a.banks.size()) - 1, e = 3;
      const std::vector<float> got = read_expert(*ck, a.banks[size_t(b)].experts[e]);
      const float* want = reinterpret_cast<const float*>(gate->bytes.data()) + (b * Mg + e) * h * d;
      QVERIFY(std::equal(want, want + h * d, got.begin()));
      QCOMPARE(a.routed_params, int64_t(a.banks.size()) * Mg * 3 * h * d);
    }
  }

  void malformedCheckpointsSaySo_data() {
    QTest::addColumn<QString>("mutation");
    QTest::addColumn<QString>("says");
    QTest::newRow("missing shard") << "rm-shard"
                                   << "which is not in the folder";
    QTest::newRow("index points elsewhere") << "index-wrong-file"
                                            << "which does not have it";
    QTest::newRow("index escapes the folder") << "index-path"
                                              << "is not a file name";
    QTest::newRow("index without weight_map") << "index-empty"
                                              << "weight_map";
    QTest::newRow("index not JSON") << "index-garbage"
                                    << "not a JSON object";
    QTest::newRow("config not JSON") << "config-garbage"
                                     << "config.json: not a JSON object";
    QTest::newRow("truncated shard") << "truncate"
                                     << "extends past end of file";
    QTest::newRow("expert part missing") << "drop-w3"
                                         << "experts.2.w3.weight is missing";
    QTest::newRow("expert index gap") << "drop-expert"
                                      << "expert indices are not 0..";
    QTest::newRow("router rows") << "router-rows"
                                 << "rows for 4 experts";
    QTest::newRow("expert shapes differ") << "expert-shape"
                                          << "every routed expert must";
    QTest::newRow("FP8 without scale") << "fp8-no-scale"
                                       << "cannot be dequantised";
    QTest::newRow("FP8 scale shape") << "fp8-bad-scale"
                                     << "does not tile";
    QTest::newRow("MXFP4 experts") << "mxfp4"
                                   << "MXFP4";
    QTest::newRow("dense model") << "dense"
                                 << "no Mixture-of-Experts layout recognised";
    QTest::newRow("empty folder") << "empty"
                                  << "no .safetensors file";
    QTest::newRow("sub-byte dtype") << "f4"
                                    << "unknown dtype \"F4\"";
    QTest::newRow("empty expert matrix") << "zero-rows"
                                         << "expected a matrix";
    QTest::newRow("packed int4 experts") << "packed"
                                         << "stored packed";
    QTest::newRow("more experts than the map holds") << "too-many"
                                                     << "more than the 4096";
  }
  void malformedCheckpointsSaySo() {
    QFETCH(QString, mutation);
    QFETCH(QString, says);
    fixtures::Spec s;
    s.family = mutation.startsWith("fp8") ? "deepseek_v3"
               : mutation == "mxfp4"      ? "gpt_oss"
               : mutation == "dense"      ? "dense"
                                          : "mixtral";
    if (s.family == "deepseek_v3") s.dtype = DType::F8_E4M3;
    if (mutation == "too-many") {  // one layer of 5,000 tiny fused experts
      s.family = "gpt_oss";
      s.layers = 1;
      s.experts = 5000;
      s.hidden = 2;
      s.inter = 1;
    }
    if (mutation.startsWith("index") || mutation == "rm-shard") s.shards = 2;
    const QString dir = fresh();
    fixtures::write(dir, s);
    const QString file = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
    const std::string l1 = "model.layers.1.block_sparse_moe.";
    auto put = [](const QString& path, const QByteArray& bytes) {
      QFile f(path);
      QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
      f.write(bytes);
    };
    auto index_json = [&] {
      QFile f(index);
      f.open(QIODevice::ReadOnly);
      return QJsonDocument::fromJson(f.readAll()).object();
    };
    if (mutation == "rm-shard") {
      QVERIFY(QFile::remove(dir + "/model-00002-of-00002.safetensors"));
    } else if (mutation == "index-wrong-file" || mutation == "index-path") {
      QJsonObject j = index_json(), map = j["weight_map"].toObject();
      map["lm_head.weight"] = mutation == "index-path" ? "../model-00001-of-00002.safetensors"
                              : map["lm_head.weight"].toString().contains("00001")
                                  ? "model-00002-of-00002.safetensors"
                                  : "model-00001-of-00002.safetensors";
      j["weight_map"] = map;
      put(index, QJsonDocument(j).toJson());
    } else if (mutation == "index-empty") {
      put(index, R"({"metadata": {}, "weight_map": {}})");
    } else if (mutation == "index-garbage") {
      put(index, "not json");
    } else if (mutation == "config-garbage") {
      put(dir + "/config.json", "{");
    } else if (mutation == "truncate") {
      QVERIFY(QFile::resize(file, 200));
    } else if (mutation == "empty") {
      QVERIFY(QFile::remove(file) && QFile::remove(dir + "/config.json"));
    } else if (mutation == "f4") {
      QByteArray header = R"({"x":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})";
      QByteArray bytes(8, 0);
      bytes[0] = char(header.size());
      put(file, bytes + header + QByteArray(1, 0));
    } else if (mutation != "dense" && mutation != "too-many") {
      SafetensorsFile f = read_safetensors(file.toStdString());
      auto& t = f.tensors;
      auto named = [&](const std::string& name) {
        return std::find_if(t.begin(), t.end(),
                            [&](const TensorRecord& r) { return r.name == name; });
      };
      if (mutation == "drop-w3") t.erase(named(l1 + "experts.2.w3.weight"));
      if (mutation == "drop-expert")
        for (const char* w : {"w1", "w2", "w3"}) t.erase(named(l1 + "experts.2." + w + ".weight"));
      if (mutation == "router-rows") {
        auto r = named(l1 + "gate.weight");
        r->shape[0] = 3;
        r->bytes.resize(size_t(3 * r->shape[1]) * 4);
      }
      if (mutation == "packed") named(l1 + "experts.0.w1.weight")->name += "_packed";
      if (mutation == "zero-rows") {
        auto r = named(l1 + "experts.1.w1.weight");
        r->shape[0] = 0;
        r->bytes.clear();
      }
      if (mutation == "expert-shape") {
        auto r = named(l1 + "experts.1.w1.weight");
        r->shape[0] += 1;
        r->bytes.resize(size_t(r->shape[0] * r->shape[1]) * 4);
      }
      const std::string fp8 = "model.layers.1.mlp.experts.0.gate_proj.weight_scale_inv";
      if (mutation == "fp8-no-scale") t.erase(named(fp8));
      if (mutation == "fp8-bad-scale") {
        auto r = named(fp8);
        r->shape = {3, 5};
        r->bytes.resize(15 * 4);
      }
      if (mutation == "mxfp4") named("model.layers.0.mlp.experts.gate_up_proj")->name += "_blocks";
      write_safetensors_atomic(file.toStdString(), f.metadata, t);
    }
    QString got;
    try {
      const auto ck = MoeCheckpoint::open(dir.toStdString());
      analyse_redundancy(*ck);
    } catch (const FormatError& e) {
      got = QString::fromStdString(e.what());
    } catch (const MoeLayoutError& e) {
      got = QString::fromStdString(e.what());
    }
    QVERIFY2(got.contains(says), qPrintable(mutation + ": " + got));
    qInfo("%s: %s", qPrintable(mutation), qPrintable(got.left(160)));
  }

  void cancelStopsOpeningAndAnalysis() {
    fixtures::Spec s;
    s.family = "mixtral";
    s.shards = 2;
    const QString dir = fresh();
    fixtures::write(dir, s);
    QVERIFY(message_of<Cancelled>([&] {
              MoeCheckpoint::open(dir.toStdString(),
                                  [](double, const std::string&) { return false; });
            }) == "cancelled");
    const auto ck = MoeCheckpoint::open(dir.toStdString());
    int calls = 0;
    QVERIFY(!message_of<Cancelled>([&] {
               analyse_redundancy(*ck, {}, [&](double, const std::string&) { return ++calls < 2; });
             }).isEmpty());
  }

  void inspectPrintsJson() {
    fixtures::Spec s;
    s.family = "qwen2_moe";
    s.planted = {{0, 0, 2, 1, 0.9f}};
    const QString dir = fresh();
    fixtures::write(dir, s);
    QProcess p;
    p.start(qEnvironmentVariable("UNIPOOL_CLI"), {"inspect", dir, "--json", "--rows", "4"});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 0);
    const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
    QCOMPARE(j["family"].toString(), QStringLiteral("Qwen2-MoE"));
    QCOMPARE(j["experts_per_layer"].toInt(), 4);
    QCOMPARE(j["unipool_view"].toObject()["pool_experts"].toInt(), 12);
    const QJsonObject top = j["redundancy"].toObject()["top_pairs"].toArray()[0].toObject();
    QCOMPARE(top["layer_a"].toString(), QStringLiteral("layer 0"));
    QCOMPARE(top["layer_b"].toString(), QStringLiteral("layer 2"));
    QCOMPARE(top["expert_b"].toInt(), 1);
    QCOMPARE(j["redundancy"].toObject()["exact"].toBool(), false);  // 4 of 8 or 16 rows
    QVERIFY(j["redundancy"].toObject()["standard_error"].toDouble() > 0);
    // A dense file: exit 1 with the reason.
    fixtures::Spec dense;
    dense.family = "dense";
    const QString d2 = fresh();
    fixtures::write(d2, dense);
    p.start(qEnvironmentVariable("UNIPOOL_CLI"), {"inspect", d2});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 1);
    QVERIFY(p.readAllStandardError().contains("no Mixture-of-Experts layout recognised"));
  }
};

QTEST_GUILESS_MAIN(TestMoeCheckpoints)
#include "tst_moe_checkpoints.moc"
