// Tests for the model config (JSON, validation, NormRouter constant, parameter counts), the
// training options and learning-rate schedule, the presets and the routing summary figures.
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>
#include <cmath>
#include <functional>

#include "unipool/config.h"
#include "unipool/schedule.h"
#include "unipool/stats.h"

using unipool::ConfigError;
using unipool::ModelConfig;
using unipool::TrainOptions;

namespace {

// A config where every field differs from the struct default, so a round trip that drops or
// swaps a field is noticed.
ModelConfig odd_config() {
  ModelConfig c;
  c.d_model = 48;
  c.n_layers = 4;
  c.n_heads = 6;
  c.n_kv_heads = 3;
  c.expert_hidden = 40;
  c.layers_per_group = 2;
  c.experts_per_group = 5;
  c.top_k = 2;
  c.router = "norm";
  c.router_c = 1.8765432109876543;  // not a round number: must survive the text exactly
  c.renormalize_gates = true;
  c.balance = "layer";
  c.aux_coef = 0.0375;
  c.z_coef = 0.001;
  c.rope_theta = 5000.5;
  c.norm_eps = 3e-6;
  c.max_seq_len = 300;
  return c;
}

QJsonObject as_object(const std::string& json) {
  return QJsonDocument::fromJson(QByteArray::fromStdString(json)).object();
}

std::string as_text(const QJsonObject& o) {
  return QJsonDocument(o).toJson(QJsonDocument::Compact).toStdString();
}

// The ConfigError message of `fn`, or an empty string when it did not throw.
QString config_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return QString::fromUtf8(e.what());
  }
  return QString();
}

// Independent parameter count from the SPEC section 6 tensor list.
int64_t spec_total(const ModelConfig& c) {
  const int64_t V = c.vocab_size, d = c.d_model, hd = c.d_model / c.n_heads;
  const int64_t N = int64_t(c.n_layers / c.layers_per_group) * c.experts_per_group;
  int64_t total = V * d;  // embed.weight
  for (int l = 0; l < c.n_layers; ++l) {
    total += d;                                   // attn_norm
    total += int64_t(c.n_heads) * hd * d;         // q_proj
    total += 2 * int64_t(c.n_kv_heads) * hd * d;  // k_proj, v_proj
    total += d * int64_t(c.n_heads) * hd;         // o_proj
    total += d;                                   // ffn_norm
    total += int64_t(c.experts_per_group) * d;    // router.weight
    if (c.router == "norm") total += 1;           // router.scale
  }
  total += 3 * N * c.expert_hidden * d;  // pool.w_gate, w_up, w_down
  total += d + V * d;                    // final_norm, lm_head
  return total;
}

}  // namespace

class TestConfig : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void jsonRoundTrip() {
    const ModelConfig c = odd_config();
    const ModelConfig back = unipool::config_from_json(unipool::to_json(c));
    QVERIFY(back == c);
    QCOMPARE(back.router_c, c.router_c);  // bit-exact, a checkpoint depends on it
    QCOMPARE(back.d_model, 48);
    QCOMPARE(back.n_kv_heads, 3);
    QCOMPARE(back.balance, std::string("layer"));
    QVERIFY(back.renormalize_gates);
    // Every SPEC section 6 key is written, nothing else.
    const QJsonObject o = as_object(unipool::to_json(c));
    const QStringList keys = {
        "vocab_size",    "d_model",           "n_layers",          "n_heads",  "n_kv_heads",
        "expert_hidden", "layers_per_group",  "experts_per_group", "top_k",    "router",
        "router_c",      "renormalize_gates", "balance",           "aux_coef", "z_coef",
        "rope_theta",    "norm_eps",          "max_seq_len"};
    QCOMPARE(o.size(), keys.size());
    for (const QString& k : keys) QVERIFY2(o.contains(k), qPrintable(k));
    // A changed field makes configs unequal.
    ModelConfig d = c;
    d.top_k = 1;
    QVERIFY(d != c);
  }

  void missingRouterConstantIsComputed() {
    QJsonObject o = as_object(unipool::to_json(odd_config()));
    o.remove("router_c");
    const ModelConfig c = unipool::config_from_json(as_text(o));
    QCOMPARE(c.router_c, unipool::norm_router_constant(5, 2));
  }

  void rejectsBadJson() {
    const QJsonObject good = as_object(unipool::to_json(odd_config()));
    auto error_for = [&](const QJsonObject& o) {
      return config_error([&] { unipool::config_from_json(as_text(o)); });
    };
    QJsonObject o = good;
    o.insert("bogus_key", 1);
    QVERIFY2(error_for(o).contains("bogus_key"), qPrintable(error_for(o)));
    for (const char* key : {"d_model", "router", "top_k", "renormalize_gates", "aux_coef"}) {
      o = good;
      o.remove(key);
      QVERIFY2(error_for(o).contains(key), qPrintable(error_for(o)));
    }
    // Wrong JSON types: a string for an int, an int for a bool, a number for a string,
    // a fraction for an int.
    const std::vector<std::pair<const char*, QJsonValue>> wrong = {
        {"d_model", QJsonValue("48")},    {"renormalize_gates", QJsonValue(1)},
        {"router", QJsonValue(3)},        {"n_layers", QJsonValue(4.5)},
        {"aux_coef", QJsonValue("0.01")}, {"balance", QJsonValue(true)}};
    for (const auto& [key, value] : wrong) {
      o = good;
      o.insert(key, value);
      QVERIFY2(error_for(o).contains(key), qPrintable(error_for(o)));
    }
    QVERIFY(!config_error([] { unipool::config_from_json("[1, 2]"); }).isEmpty());
    QVERIFY(!config_error([] { unipool::config_from_json("{\"d_model\": "); }).isEmpty());
  }

  void rejectsOutOfRange() {
    // Each case breaks one rule; the message must name the field at fault.
    struct Case {
      const char* field;
      std::function<void(ModelConfig&)> edit;
    };
    const std::vector<Case> cases = {
        {"top_k", [](ModelConfig& c) { c.top_k = c.experts_per_group + 1; }},
        {"top_k", [](ModelConfig& c) { c.top_k = 0; }},
        {"layers_per_group", [](ModelConfig& c) { c.layers_per_group = 3; }},  // 4 layers
        {"layers_per_group", [](ModelConfig& c) { c.layers_per_group = 8; }},
        {"router", [](ModelConfig& c) { c.router = "foo"; }},
        {"balance", [](ModelConfig& c) { c.balance = "global"; }},
        {"vocab_size", [](ModelConfig& c) { c.vocab_size = 300; }},
        {"aux_coef", [](ModelConfig& c) { c.aux_coef = -0.01; }},
        {"z_coef", [](ModelConfig& c) { c.z_coef = -1.0; }},
        {"n_layers", [](ModelConfig& c) { c.n_layers = 0; }},
        {"d_model", [](ModelConfig& c) { c.d_model = 50; }},  // not a multiple of 6 heads
        {"n_heads", [](ModelConfig& c) { c.n_heads = 0; }},
        {"n_kv_heads", [](ModelConfig& c) { c.n_kv_heads = 4; }},  // 6 heads
        {"n_kv_heads", [](ModelConfig& c) { c.n_kv_heads = 0; }},
        {"d_model", [](ModelConfig& c) { c.d_model = 18; }},  // head dim 3 is odd
        {"expert_hidden", [](ModelConfig& c) { c.expert_hidden = 0; }},
        {"experts_per_group",
         [](ModelConfig& c) {
           c.experts_per_group = 0;
           c.top_k = 0;
         }},
        {"router_c", [](ModelConfig& c) { c.router_c = -2.0; }},
        {"rope_theta", [](ModelConfig& c) { c.rope_theta = 0.0; }},
        {"norm_eps", [](ModelConfig& c) { c.norm_eps = 0.0; }},
        {"max_seq_len", [](ModelConfig& c) { c.max_seq_len = 0; }},
        {"aux_coef", [](ModelConfig& c) { c.aux_coef = std::nan(""); }},
    };
    for (const Case& k : cases) {
      ModelConfig c = odd_config();
      k.edit(c);
      const QString direct = config_error([&] { unipool::validate(c); });
      QVERIFY2(direct.contains(k.field), qPrintable(QString(k.field) + ": " + direct));
      if (std::isfinite(c.aux_coef)) {  // NaN cannot be written as JSON
        const QString parsed =
            config_error([&] { unipool::config_from_json(unipool::to_json(c)); });
        QVERIFY2(parsed.contains(k.field), qPrintable(QString(k.field) + ": " + parsed));
      }
    }
    unipool::validate(odd_config());  // the base case itself is valid
  }

  void routerConstant() {
    // SPEC section 3 reference values, within 1%.
    const struct {
      int mg, k;
      double c;
    } refs[] = {{16, 1, 2.40}, {24, 1, 2.62}, {24, 2, 2.04},  {48, 1, 3.19},
                {48, 2, 2.43}, {96, 1, 4.02}, {192, 1, 5.16}, {192, 2, 3.85}};
    for (const auto& r : refs) {
      const double c = unipool::norm_router_constant(r.mg, r.k);
      QVERIFY2(std::abs(c / r.c - 1.0) < 0.01,
               qPrintable(QString("(%1,%2): %3 vs %4").arg(r.mg).arg(r.k).arg(c).arg(r.c)));
    }
    // Small pools are heavy-tailed: a range, not a digit (SPEC section 3).
    const double c8 = unipool::norm_router_constant(8, 1);
    QVERIFY2(c8 >= 2.5 && c8 <= 3.4, qPrintable(QString::number(c8)));
    // Fixed seed: the same value every time; Mg = k = 1 is exactly 1 (the one entry is 1 or 0).
    QCOMPARE(unipool::norm_router_constant(8, 1), c8);
    QCOMPARE(unipool::norm_router_constant(1, 1), 1.0);
    // More selected entries make the selected norm larger, so c falls with k; with k = Mg the
    // norm is ||relu(x)|| / ||x|| <= 1, so c >= 1 (equality only if every x_i > 0).
    const double c41 = unipool::norm_router_constant(4, 1),
                 c42 = unipool::norm_router_constant(4, 2),
                 c44 = unipool::norm_router_constant(4, 4);
    QVERIFY2(c41 > c42 && c42 > c44 && c44 > 1.0,
             qPrintable(QString("%1 %2 %3").arg(c41).arg(c42).arg(c44)));
    QVERIFY(!config_error([] { unipool::norm_router_constant(4, 5); }).isEmpty());
    ModelConfig c = odd_config();
    c.router = "softmax";
    unipool::refresh_router_constant(c);
    QCOMPARE(c.router_c, 0.0);
    c.router = "norm";
    unipool::refresh_router_constant(c);
    QCOMPARE(c.router_c, unipool::norm_router_constant(c.experts_per_group, c.top_k));
  }

  void presets() {
    QVERIFY(unipool::preset_names().size() >= 6);
    for (const std::string& name : unipool::preset_names()) {
      const unipool::Preset p = unipool::preset(name);
      QCOMPARE(p.name, name);
      unipool::validate(p.model);
      unipool::validate(p.train);
      QVERIFY(!p.summary.empty());
      QVERIFY(p.train.seq <= p.model.max_seq_len);
      if (p.model.router == "norm") {
        QCOMPARE(p.model.router_c,
                 unipool::norm_router_constant(p.model.experts_per_group, p.model.top_k));
      }
    }
    const QString e = config_error([] { unipool::preset("nosuch"); });
    QVERIFY2(e.contains("nosuch"), qPrintable(e));
    // The table of SPEC section 1.
    QCOMPARE(unipool::preset("vanilla").model.layers_per_group, 1);
    QCOMPARE(unipool::preset("default").model.layers_per_group,
             unipool::preset("default").model.n_layers);
    const ModelConfig dense = unipool::preset("dense").model;
    QCOMPARE(dense.experts_per_group, 1);
    QCOMPARE(dense.top_k, 1);
    QCOMPARE(dense.router, std::string("softmax"));
  }

  void budgetRatios() {
    QCOMPARE(unipool::count_parameters(unipool::preset("default").model).budget_ratio, 0.5);
    QCOMPARE(unipool::count_parameters(unipool::preset("unipool-full").model).budget_ratio, 1.0);
    QCOMPARE(unipool::count_parameters(unipool::preset("vanilla").model).budget_ratio, 1.0);
    for (const std::string& name : unipool::preset_names()) {
      const ModelConfig c = unipool::preset(name).model;
      const unipool::ParamCounts p = unipool::count_parameters(c);
      const int64_t N = int64_t(c.n_layers / c.layers_per_group) * c.experts_per_group;
      const int64_t one = 3 * int64_t(c.d_model) * c.expert_hidden;
      QCOMPARE(p.expert, N * one);
      QCOMPARE(p.vanilla_budget, 8 * int64_t(c.n_layers) * one);
      QCOMPARE(p.budget_ratio, double(N) / (8.0 * c.n_layers));
    }
  }

  void parameterTotal() {
    std::vector<ModelConfig> configs;
    for (const std::string& name : unipool::preset_names())
      configs.push_back(unipool::preset(name).model);
    configs.push_back(odd_config());
    ModelConfig soft = odd_config();
    soft.router = "softmax";  // no router.scale
    configs.push_back(soft);
    for (const ModelConfig& c : configs) {
      const unipool::ParamCounts p = unipool::count_parameters(c);
      QCOMPARE(p.total, spec_total(c));
      // One token touches: its layers' attention, norms, router and top_k experts, the final
      // norm and lm_head (the embedding row is not counted).
      const int64_t d = c.d_model, hd = d / c.n_heads;
      const int64_t per_layer = 2 * d * c.n_heads * hd + 2 * d * c.n_kv_heads * hd + 2 * d +
                                int64_t(c.experts_per_group) * d + (c.router == "norm") +
                                int64_t(c.top_k) * 3 * d * c.expert_hidden;
      QCOMPARE(p.active_per_token, c.n_layers * per_layer + d + int64_t(c.vocab_size) * d);
    }
  }

  void learningRate() {
    TrainOptions o;
    o.lr = 2e-3;
    o.min_lr_ratio = 0.25;
    o.warmup_steps = 8;
    o.total_steps = 108;
    const double lr = o.lr, lo = o.lr * o.min_lr_ratio;
    // Linear warm-up: equal increments of lr / warmup, reaching the peak at its last step.
    for (int s = 0; s < o.warmup_steps; ++s) {
      QVERIFY(std::abs(unipool::learning_rate_at(o, s) - lr * (s + 1) / 8.0) < 1e-15);
    }
    QVERIFY(std::abs(unipool::learning_rate_at(o, 8) - lr) < 1e-15);  // peak right after
    // Cosine from lr to lr * min_lr_ratio over the remaining steps.
    for (int s = 8; s <= 108; s += 5) {
      const double progress = (s - 8) / 100.0;
      const double want = lo + 0.5 * (lr - lo) * (1.0 + std::cos(M_PI * progress));
      QVERIFY(std::abs(unipool::learning_rate_at(o, s) - want) < 1e-15);
      QVERIFY(unipool::learning_rate_at(o, s + 1) <= unipool::learning_rate_at(o, s));
    }
    QVERIFY(std::abs(unipool::learning_rate_at(o, 58) - 0.5 * (lr + lo)) < 1e-15);  // midpoint
    QVERIFY(std::abs(unipool::learning_rate_at(o, 108) - lo) < 1e-15);
    QVERIFY(std::abs(unipool::learning_rate_at(o, 500) - lo) < 1e-15);  // stays at the floor
    o.warmup_steps = 0;
    QVERIFY(std::abs(unipool::learning_rate_at(o, 0) - lr) < 1e-15);
  }

  void trainOptionsJson() {
    TrainOptions o;
    o.lr = 1.25e-3;
    o.min_lr_ratio = 0.05;
    o.warmup_steps = 7;
    o.total_steps = 777;
    o.weight_decay = 0.02;
    o.beta1 = 0.8;
    o.beta2 = 0.99;
    o.adam_eps = 1e-7;
    o.grad_clip = 0.5;
    o.batch = 3;
    o.seq = 17;
    o.seed = 0xFEDCBA9876543210ull;  // above 2^63: must stay an unsigned 64-bit number
    o.valid_fraction = 0.125;
    const TrainOptions back = unipool::train_options_from_json(unipool::to_json(o));
    QVERIFY(back == o);
    QCOMPARE(back.seed, o.seed);
    QCOMPARE(back.lr, o.lr);
    QCOMPARE(back.seq, 17);
    TrainOptions other = o;
    other.batch = 4;
    QVERIFY(!(other == o));
    QJsonObject j = as_object(unipool::to_json(o));
    j.remove("batch");
    QString e = config_error([&] { unipool::train_options_from_json(as_text(j)); });
    QVERIFY2(e.contains("batch"), qPrintable(e));
    o.total_steps = 0;
    e = config_error([&] { unipool::validate(o); });
    QVERIFY2(e.contains("total_steps"), qPrintable(e));
  }

  // The reference code's router details (issue 21 item 5): written only when set, so every
  // checkpoint without them keeps its bytes; set, they round-trip and are range-checked.
  void routerOptionsJson() {
    TrainOptions o;
    const QJsonObject plain = as_object(unipool::to_json(o));
    QVERIFY(!plain.contains("router_init_std") && !plain.contains("router_weight_decay"));
    o.router_init_std = 0.01;
    o.router_weight_decay = 0.0;  // 0 is a value (no decay), not "unset"
    const TrainOptions back = unipool::train_options_from_json(unipool::to_json(o));
    QCOMPARE(back.router_init_std, 0.01);
    QCOMPARE(back.router_weight_decay, 0.0);
    QVERIFY(back == o && !(back == TrainOptions{}));
    o.router_weight_decay = std::nan("");
    QString e = config_error([&] { unipool::validate(o); });
    QVERIFY2(e.contains("router_weight_decay"), qPrintable(e));
    o.router_weight_decay = -1;
    o.router_init_std = 2.0;
    e = config_error([&] { unipool::validate(o); });
    QVERIFY2(e.contains("router_init_std"), qPrintable(e));
  }

  void summaryByHand() {
    // One pool of 4 experts shared by 2 layers, top-1, 8 tokens.
    unipool::RoutingCounts r(2, 2, 4, 1);
    r.tokens = 8;
    r.counts = {4, 4, 0, 0,   // layer 0
                0, 4, 4, 0};  // layer 1
    r.gate_sum = {2.0, 1.0, 0, 0, 0, 4.0, 2.0, 0};
    r.entropy_sum = {4.0, 2.0};
    r.reuse_sum = 6.0;
    const unipool::RoutingSummary s = unipool::summarize(r);
    QCOMPARE(s.n_experts, 4);
    QCOMPARE(s.load[0], 0.5);
    QCOMPARE(s.load[6], 0.5);
    QCOMPARE(s.gate_mass[0], 0.25);
    QCOMPARE(s.gate_mass[5], 0.5);
    // Pool load (summed over layers): [0.5, 1, 0.5, 0]; share = /2 = [.25, .5, .25, 0].
    QCOMPARE(s.pool_load, (std::vector<double>{0.5, 1.0, 0.5, 0.0}));
    QCOMPARE(s.layer_imbalance, (std::vector<double>{2.0, 2.0}));
    QCOMPARE(s.imbalance, 2.0);  // 0.5 / (1/4)
    // Pool counts [4, 8, 4, 0]: mean 4, variance 8.
    QVERIFY(std::abs(s.cv - std::sqrt(8.0) / 4.0) < 1e-12);
    // H(.25, .5, .25, 0) = 1.5 ln 2 = 0.75 log 4.
    QVERIFY(std::abs(s.load_entropy - 0.75) < 1e-12);
    QCOMPARE(s.dead_experts, 1);
    QVERIFY(std::abs(s.router_entropy - (4.0 / 8 + 2.0 / 8) / 2) < 1e-12);
    QCOMPARE(s.reuse, 0.75);
  }

  // Zero-gate tokens (SPEC 9) leave the first k choosable experts' counts: local 0..k-1, or a
  // locked layer's first owned experts; everything else, zero_gate included, stays.
  void withoutZeroGateByHand() {
    unipool::RoutingCounts c(2, 2, 4, 2);  // one pool of 4 shared by 2 layers, top-2
    c.tokens = 10;
    c.counts = {6, 5, 5, 4,  /* layer 1 */ 3, 7, 2, 8};
    c.zero_gate = {3, 1};
    const unipool::RoutingCounts a = unipool::without_zero_gate(c);
    QCOMPARE(a.counts, (std::vector<int64_t>{3, 2, 5, 4, 2, 6, 2, 8}));
    QCOMPARE(a.zero_gate, c.zero_gate);
    const std::vector<std::vector<int>> owned = {{1, 3}, {0, 2}};
    const unipool::RoutingCounts b = unipool::without_zero_gate(c, &owned);
    QCOMPARE(b.counts, (std::vector<int64_t>{6, 2, 5, 1, 2, 7, 1, 8}));
    c.zero_gate = {20, 0};  // more than a cell holds: clamped at 0, never negative
    QCOMPARE(unipool::without_zero_gate(c).counts[0], int64_t(0));
  }

  void countsShapeChecks() {
    // Windows of different top_k do not add up (their loads would exceed 1), and a window whose
    // vectors do not match its shape is refused rather than read out of bounds.
    auto rejects = [](const std::function<void()>& fn) {
      try {
        fn();
      } catch (const std::invalid_argument&) {
        return true;
      }
      return false;
    };
    unipool::RoutingCounts a(2, 2, 4, 1), b(2, 2, 4, 2);
    a.tokens = b.tokens = 3;
    QVERIFY(rejects([&] { a.add(b); }));
    unipool::RoutingCounts short_counts(2, 2, 4, 1);
    short_counts.tokens = 5;
    short_counts.counts.pop_back();
    QVERIFY(rejects([&] { unipool::summarize(short_counts); }));
    unipool::RoutingCounts zero_group(2, 0, 4, 1);
    zero_group.tokens = 5;
    QVERIFY(rejects([&] { unipool::summarize(zero_group); }));
  }

  void summaryGeneral() {
    // Two pools of 3 experts (4 layers, 2 per group), top-2, counts from a formula; compare with
    // loops written from SPEC section 5.
    const int L = 4, G = 2, Mg = 3, k = 2;
    const int64_t T = 30;
    unipool::RoutingCounts a(L, G, Mg, k), b(L, G, Mg, k);
    a.tokens = 20;
    b.tokens = 10;
    const int64_t ca[L][Mg] = {{20, 10, 10}, {5, 35, 0}, {0, 0, 40}, {13, 13, 14}};
    const int64_t cb[L][Mg] = {{10, 10, 0}, {0, 20, 0}, {0, 0, 20}, {7, 7, 6}};
    for (int l = 0; l < L; ++l) {
      for (int i = 0; i < Mg; ++i) {
        a.counts[size_t(l * Mg + i)] = ca[l][i];
        b.counts[size_t(l * Mg + i)] = cb[l][i];
        a.gate_sum[size_t(l * Mg + i)] = 0.5 * double(ca[l][i]);
        b.gate_sum[size_t(l * Mg + i)] = 0.25 * double(cb[l][i]);
      }
      a.entropy_sum[size_t(l)] = 10.0 + l;
      b.entropy_sum[size_t(l)] = 1.0;
    }
    a.reuse_sum = 15.0;
    b.reuse_sum = 9.0;
    unipool::RoutingCounts sum = a;
    sum.add(b);
    QCOMPARE(sum.tokens, T);
    QCOMPARE(sum.count(1, 1), int64_t(55));
    unipool::RoutingCounts other(L, 1, Mg, k);
    other.tokens = 1;
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, sum.add(other));

    const unipool::RoutingSummary s = unipool::summarize(sum);
    std::vector<double> pool_counts(2 * Mg, 0.0);
    for (int l = 0; l < L; ++l) {
      double worst = 0;
      for (int i = 0; i < Mg; ++i) {
        const double c = double(ca[l][i] + cb[l][i]);
        QVERIFY(std::abs(s.load[size_t(l * Mg + i)] - c / (T * k)) < 1e-15);
        const double mass = (0.5 * ca[l][i] + 0.25 * cb[l][i]) / T;
        QVERIFY(std::abs(s.gate_mass[size_t(l * Mg + i)] - mass) < 1e-15);
        pool_counts[size_t((l / G) * Mg + i)] += c;
        worst = std::max(worst, c / (T * k));
      }
      QVERIFY(std::abs(s.layer_imbalance[size_t(l)] - worst * Mg) < 1e-12);
    }
    double mean = 0, var = 0, imbalance = 0, entropy = 0;
    for (double v : pool_counts) mean += v / 6;
    for (double v : pool_counts) var += (v - mean) * (v - mean) / 6;
    for (int g = 0; g < 2; ++g) {
      double h = 0;
      for (int i = 0; i < Mg; ++i) {
        const double share = pool_counts[size_t(g * Mg + i)] / (T * k * G);  // sums to 1
        QVERIFY(std::abs(s.pool_load[size_t(g * Mg + i)] - share * G) < 1e-12);
        imbalance = std::max(imbalance, share * Mg);
        if (share > 0) h -= share * std::log(share);
      }
      entropy += h / std::log(3.0) / 2;
    }
    QVERIFY(std::abs(s.cv - std::sqrt(var) / mean) < 1e-12);
    QVERIFY(std::abs(s.imbalance - imbalance) < 1e-12);
    QVERIFY(std::abs(s.load_entropy - entropy) < 1e-12);
    QCOMPARE(s.dead_experts, 0);  // pool 1's expert 0 is used by layer 3
    QVERIFY(std::abs(s.router_entropy - (46.0 + 4.0) / T / L) < 1e-12);
    QVERIFY(std::abs(s.reuse - 24.0 / T) < 1e-12);
    // The JSON line carries the same figures.
    const QJsonObject j = as_object(unipool::to_json(s));
    QVERIFY(std::abs(j.value("imbalance").toDouble() - s.imbalance) < 1e-12);
    QCOMPARE(j.value("dead_experts").toInt(), 0);
    // An empty window gives zeros, not NaN.
    const unipool::RoutingSummary e = unipool::summarize(unipool::RoutingCounts(L, G, Mg, k));
    QCOMPARE(e.imbalance, 0.0);
    QCOMPARE(e.cv, 0.0);
  }
};

QTEST_APPLESS_MAIN(TestConfig)
#include "tst_config.moc"
