// The rules defined once in core: live settings as values (Engine::apply), the architecture
// rules the presets, the form and the inspector share, and the shared counter-based RNG.
#include <QtTest>
#include <memory>

#include "unipool/architecture.h"
#include "unipool/engine.h"
#include "unipool/live_settings.h"
#include "unipool/random.h"

using unipool::AppliedSetting;
using unipool::Architecture;
using unipool::Engine;
using unipool::LiveSetting;

namespace {

std::unique_ptr<Engine> tiny() {
  unipool::Preset p = unipool::preset("tiny");
  p.train.total_steps = 50;
  unipool::DataSpec data;
  data.builtin_bytes = 200000;
  return std::make_unique<Engine>(p.model, p.train, data);
}

// The textbook SplitMix64 (Vigna), written out here independently of unipool/random.h.
uint64_t textbook_splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

class TestRules : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  // Each setting changes what it names, reports its kind and marker, and says whether the
  // routing's shape changed.
  void settingsApplyAndDescribeThemselves() {
    auto e = tiny();
    const auto check = [&](const LiveSetting& s, const char* kind, const char* marker,
                           bool reshapes) {
      const AppliedSetting a = e->apply(s);
      QCOMPARE(QString::fromStdString(a.kind), QString::fromLatin1(kind));
      QCOMPARE(QString::fromStdString(a.marker), QString::fromLatin1(marker));
      QCOMPARE(a.reshapes_routing, reshapes);
      QCOMPARE(unipool::setting_kind(s), std::string(kind));
    };
    check(unipool::LearningRate{0.002}, "learning_rate", "lr 0.002", false);
    QCOMPARE(e->options().lr, 0.002);
    check(unipool::AuxCoef{0.05}, "aux_coef", "aux 0.05", false);
    QCOMPARE(e->config().aux_coef, 0.05);
    const double c1 = e->config().router_c;
    check(unipool::TopK{2}, "top_k", "top-2", true);
    QCOMPARE(e->config().top_k, 2);
    QVERIFY(e->config().router_c != c1);  // NormRouter's constant follows k
    QCOMPARE(e->config().router_c, unipool::norm_router_constant(8, 2));
    check(unipool::RandomLayers{{false, true}}, "random_routing", "random: L1", false);
    QCOMPARE(e->random_layers(), (std::vector<bool>{false, true}));
    check(unipool::RandomLayers{{false, false}}, "random_routing", "random: off", false);
    check(unipool::ZCoef{0.001}, "z_coef", "z 0.001", false);
    QCOMPARE(e->config().z_coef, 0.001);
    check(unipool::PoolSize{12, {}}, "pool_resized", "pool 8 -> 12", true);
    QCOMPARE(e->config().experts_per_group, 12);
    // The model still trains after every change, now with a z-loss.
    const unipool::StepMetrics m = e->train_step();
    QVERIFY(m.applied);
    QVERIFY(m.z_loss > 0);
  }

  // A value the model cannot take throws and changes nothing.
  void refusedSettingsChangeNothing() {
    auto e = tiny();
    const unipool::ModelConfig config = e->config();
    const unipool::TrainOptions options = e->options();
    const std::vector<LiveSetting> bad = {unipool::LearningRate{-1.0},
                                          unipool::AuxCoef{-0.5},
                                          unipool::TopK{0},
                                          unipool::TopK{9},
                                          unipool::RandomLayers{{true}},
                                          unipool::PoolSize{0, {}},
                                          unipool::PoolSize{4, {0, 1, 2}}};
    for (size_t i = 0; i < bad.size(); ++i) {
      bool threw = false;
      try {
        e->apply(bad[i]);
      } catch (const std::exception&) {
        threw = true;
      }
      QVERIFY2(threw, qPrintable(QString::fromStdString(unipool::setting_title(bad[i]))));
      QCOMPARE(e->config(), config);
      QCOMPARE(e->options(), options);
      QCOMPARE(e->random_layers(), (std::vector<bool>{false, false}));
    }
    // A pool below top-k is refused once top-k is 2.
    e->apply(unipool::TopK{2});
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, e->apply(unipool::PoolSize{1, {}}));
    QCOMPARE(e->config().experts_per_group, 8);
  }

  // The one place the "which layers are random" vector is built.
  void randomLayersAreBuiltInOnePlace() {
    using unipool::RandomLayers;
    QCOMPARE(RandomLayers::from_layer(6, 3).layers,
             (std::vector<bool>{false, false, false, true, true, true}));
    QCOMPARE(RandomLayers::from_layer(4, 0).layers, (std::vector<bool>(4, true)));
    QCOMPARE(RandomLayers::from_layer(4, 4).layers, (std::vector<bool>(4, false)));  // none
    QCOMPARE(RandomLayers::from_layer(4, -2).layers, (std::vector<bool>(4, true)));
    QCOMPARE(RandomLayers::toggled({false, true, false}, 2).layers,
             (std::vector<bool>{false, true, true}));
    QCOMPARE(RandomLayers::toggled({false, true, false}, 1).layers,
             (std::vector<bool>{false, false, false}));
    QCOMPARE(RandomLayers::toggled({false, true}, 5).layers, (std::vector<bool>{false, true}));
  }

  // Every architecture's rule gives a config that reads back as that architecture, and the
  // presets are the rules applied to the teaching shape.
  void architectureRules() {
    for (Architecture a : unipool::all_architectures()) {
      QCOMPARE(unipool::parse_architecture(unipool::architecture_name(a)), a);
      for (int L : {1, 2, 5, 6}) {
        unipool::ModelConfig c;
        c.n_layers = L;
        unipool::apply_architecture(c, a);
        unipool::refresh_router_constant(c);
        unipool::validate(c);  // every rule gives a valid model
        // Small layer counts degenerate: one layer has nothing to share (vanilla), and
        // grouped needs an even L > 2 to have pools that are neither private nor global.
        Architecture want = a;  // UniPool-lock reads back from its lock whatever L is
        if (L == 1 && a != Architecture::Dense && a != Architecture::UniPoolLock)
          want = Architecture::Vanilla;
        if (a == Architecture::Grouped && L % 2 == 1) want = Architecture::Vanilla;
        if (a == Architecture::Grouped && L == 2) want = Architecture::UniPool;
        QCOMPARE(unipool::architecture_of(c), want);
      }
    }
    QVERIFY(!unipool::parse_architecture("mixtral").has_value());
    const std::pair<const char*, Architecture> presets[] = {
        {"tiny", Architecture::UniPool},
        {"default", Architecture::UniPool},
        {"vanilla", Architecture::Vanilla},
        {"unipool-full", Architecture::UniPool},
        {"grouped", Architecture::Grouped},
        {"dense", Architecture::Dense},
        {"unipool-lock", Architecture::UniPoolLock},
        {"lock-random", Architecture::UniPoolLock}};
    for (const auto& [name, arch] : presets) {
      const unipool::Preset p = unipool::preset(name);
      QCOMPARE(unipool::architecture_of(p.model), arch);
    }
    // The UniPool rule is half the vanilla budget; vanilla is all of it.
    unipool::ModelConfig c = unipool::preset("default").model;
    QCOMPARE(unipool::count_parameters(c).budget_ratio, 0.5);
    unipool::apply_architecture(c, Architecture::Vanilla);
    QCOMPARE(unipool::count_parameters(c).budget_ratio, 1.0);
    unipool::apply_architecture(c, Architecture::Dense);
    QCOMPARE(c.aux_coef, 0.0);
    QCOMPARE(c.balance, std::string("none"));
  }

  // One RNG: the engine's stream is splitmix64(seed + n), the corpus's the textbook SplitMix64
  // sequence, and hash_u64 is a pure function of its counters.
  void sharedRandomStreams() {
    for (uint64_t seed : {uint64_t(0), uint64_t(7), uint64_t(0xFFFFFFFFFFFFFFF0ull)}) {
      unipool::Rng engine(seed);
      unipool::Rng corpus = unipool::Rng::splitmix_sequence(seed);
      uint64_t state = seed;
      for (uint64_t n = 0; n < 100; ++n) {
        QCOMPARE(engine.next(), unipool::splitmix64(seed + n));
        QCOMPARE(corpus.next(), textbook_splitmix(state));
      }
    }
    // Published SplitMix64 output for seed 1234567 (Vigna's reference implementation).
    uint64_t state = 1234567;
    QCOMPARE(textbook_splitmix(state), 6457827717110365317ull);
    QCOMPARE(unipool::hash_u64(1, 2, 3, 4), unipool::hash_u64(1, 2, 3, 4));
    QVERIFY(unipool::hash_u64(1, 2, 3, 4) != unipool::hash_u64(1, 2, 4, 3));
    unipool::Rng r(99);
    for (int i = 0; i < 1000; ++i) {
      const double u = r.uniform();
      QVERIFY(u >= 0.0 && u < 1.0);
      QVERIFY(r.below(10) < 10);
      QVERIFY(r.below_u32(3) < 3);
    }
  }
};

QTEST_APPLESS_MAIN(TestRules)
#include "tst_rules.moc"
