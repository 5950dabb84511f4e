// Small MoE checkpoints in the layouts of the families people download (tensor names and
// config keys from each family's published modeling code), written with our safetensors
// writer, for tst_moe_checkpoints. Each fixture also returns what it stored: every expert's
// weights as floats (after BF16/F16/FP8 rounding) and its parameter counts, so the test can
// check the reader against numbers computed here.
#pragma once

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QString>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "unipool/safetensors.h"

namespace fixtures {

using unipool::DType;
using unipool::TensorRecord;

// E4M3 ("fn") by its definition: bias 7, subnormals below exponent 1, S.1111.111 NaN.
inline float e4m3_value(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  const float mag =
      e == 0 ? float(m) / 8.0f / 64.0f : (1.0f + float(m) / 8.0f) * std::pow(2.0f, float(e - 7));
  return (b & 0x80) ? -mag : mag;
}

inline uint8_t e4m3_nearest(float v) {
  uint8_t best = 0;
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;  // NaN
    if (std::abs(e4m3_value(uint8_t(b)) - v) < std::abs(e4m3_value(best) - v)) best = uint8_t(b);
  }
  return best;
}

struct Spec {
  std::string family;  // mixtral olmoe qwen2_moe qwen3_moe deepseek_v3 gpt_oss llama4 v5 dense
  int layers = 3, experts = 4, hidden = 16, inter = 8, top_k = 2;
  DType dtype = DType::F32;  // BF16, F16, F8_E4M3 (with 4 x 4 block scales)
  int shards = 1;
  bool config = true;
  unsigned seed = 7;
  // (layer a, expert a, layer b, expert b, mix): b's weights are mix * a's plus noise, so
  // their cosine is about mix.
  std::vector<std::tuple<int, int, int, int, float>> planted;
};

struct Written {
  std::map<std::pair<int, int>, std::vector<float>> experts;  // (layer, expert) -> stored values
  int64_t total_params = 0, routed_params = 0;
  std::vector<int> moe_layers, dense_layers;
};

class Writer {
 public:
  Writer(const Spec& s) : s_(s), rng_(s.seed) {}

  std::vector<float> normal(int64_t n, float scale = 0.1f) {
    std::normal_distribution<float> d(0.f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng_);
    return v;
  }

  // Stores `v` as a (rows, cols...) tensor in the spec's dtype; returns the stored values.
  std::vector<float> add(const std::string& name, std::vector<int64_t> shape, std::vector<float> v,
                         bool quantise = true, DType force = DType::F32, bool forced = false) {
    const DType d = forced ? force : (quantise ? s_.dtype : DType::F32);
    TensorRecord t{name, d, shape, {}};
    int64_t numel = 1;
    for (int64_t x : shape) numel *= x;
    written_.total_params += numel;
    if (d == DType::F32) {
      t.bytes.resize(size_t(numel) * 4);
      std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
    } else if (d == DType::BF16) {
      for (float& x : v) {
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        bits = (bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000u;  // round to nearest even
        std::memcpy(&x, &bits, 4);
        t.bytes.push_back(uint8_t(bits >> 16));
        t.bytes.push_back(uint8_t(bits >> 24));
      }
    } else if (d == DType::F16) {
      for (float& x : v) {
        const _Float16 h = _Float16(x);
        uint16_t bits;
        std::memcpy(&bits, &h, 2);
        x = float(h);
        t.bytes.push_back(uint8_t(bits));
        t.bytes.push_back(uint8_t(bits >> 8));
      }
    } else if (d == DType::F8_E4M3) {  // (rows, cols) with a scale per 4 x 4 block
      const int64_t rows = shape[0], cols = shape[1], br = (rows + 3) / 4, bc = (cols + 3) / 4;
      std::uniform_real_distribution<float> u(0.002f, 0.004f);
      std::vector<float> scale(size_t(br * bc));
      for (float& x : scale) x = u(rng_);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const float sc = scale[size_t((i / 4) * bc + j / 4)];
          float& x = v[size_t(i * cols + j)];
          const uint8_t b = e4m3_nearest(x / sc);
          x = e4m3_value(b) * sc;
          t.bytes.push_back(b);
        }
      TensorRecord s{name + "_scale_inv", DType::F32, {br, bc}, {}};
      s.bytes.resize(scale.size() * 4);
      std::memcpy(s.bytes.data(), scale.data(), s.bytes.size());
      tensors_.push_back(std::move(s));
    }
    tensors_.push_back(std::move(t));
    return v;
  }

  // A linear layer's weight (out, in), its values kept for an expert.
  std::vector<float> linear(const std::string& name, int64_t out, int64_t in,
                            const std::vector<float>* values = nullptr) {
    return add(name, {out, in}, values ? *values : normal(out * in));
  }

  Written write(const QString& dir) {
    const int L = s_.layers, E = s_.experts, H = s_.hidden, I = s_.inter;
    const bool deepseek = s_.family == "deepseek_v3", llama4 = s_.family == "llama4",
               fused = s_.family == "gpt_oss" || s_.family == "v5" || llama4;
    add("model.embed_tokens.weight", {64, H}, normal(64 * H), false);
    for (int l = 0; l < L; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", {H}, std::vector<float>(size_t(H), 1.f), false);
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
        linear(p + "self_attn." + proj + ".weight", H, H);
      if ((deepseek && l == 0) || s_.family == "dense") {  // first_k_dense_replace = 1
        linear(p + "mlp.gate_proj.weight", 2 * I, H);
        linear(p + "mlp.up_proj.weight", 2 * I, H);
        linear(p + "mlp.down_proj.weight", H, 2 * I);
        written_.dense_layers.push_back(l);
        continue;
      }
      written_.moe_layers.push_back(l);
      const std::string moe = s_.family == "mixtral" ? p + "block_sparse_moe."
                              : llama4               ? p + "feed_forward."
                                                     : p + "mlp.";
      add(moe + (s_.family == "gpt_oss" || llama4 ? "router.weight" : "gate.weight"), {E, H},
          normal(E * H), false, DType::BF16, s_.dtype != DType::F32);
      if (s_.family == "gpt_oss") add(moe + "router.bias", {E}, normal(E), false);
      if (deepseek) add(moe + "gate.e_score_correction_bias", {E}, normal(E), false);
      for (int e = 0; e < E; ++e) experts(moe, l, e, fused);
      if (fused) write_fused(moe, l);
      if (s_.family == "qwen2_moe" || deepseek || llama4) {
        const std::string sh = moe + (deepseek ? "shared_experts." : "shared_expert.");
        linear(sh + "gate_proj.weight", I, H);
        linear(sh + "up_proj.weight", I, H);
        linear(sh + "down_proj.weight", H, I);
        if (s_.family == "qwen2_moe")
          add(moe + "shared_expert_gate.weight", {1, H}, normal(H), false);
      }
    }
    add("model.norm.weight", {H}, std::vector<float>(size_t(H), 1.f), false);
    add("lm_head.weight", {64, H}, normal(64 * H), false);
    save(dir);
    return written_;
  }

 private:
  // Expert (l, e): fresh weights, or a planted mix of an earlier expert's.
  std::vector<float> expert_values(int l, int e, int64_t n) {
    std::vector<float> v = normal(n);
    for (const auto& [la, ea, lb, eb, mix] : s_.planted) {
      if (lb != l || eb != e) continue;
      const std::vector<float>& a = raw_[{la, ea}];
      const float rest = std::sqrt(1.f - mix * mix);
      for (size_t i = 0; i < v.size(); ++i) v[i] = mix * a[i] + rest * v[i];
    }
    raw_[{l, e}] = v;
    return v;
  }

  void experts(const std::string& moe, int l, int e, bool fused) {
    const int64_t H = s_.hidden, I = s_.inter;
    const std::vector<float> v = expert_values(l, e, 3 * I * H);
    const std::vector<float> g(v.begin(), v.begin() + I * H),
        u(v.begin() + I * H, v.begin() + 2 * I * H), d(v.begin() + 2 * I * H, v.end());
    if (fused) return;  // write_fused stacks them
    const bool mixtral = s_.family == "mixtral";
    const std::string x = moe + "experts." + std::to_string(e) + ".";
    std::vector<float> out = linear(x + (mixtral ? "w1" : "gate_proj") + ".weight", I, H, &g);
    const std::vector<float> up = linear(x + (mixtral ? "w3" : "up_proj") + ".weight", I, H, &u);
    const std::vector<float> down =
        linear(x + (mixtral ? "w2" : "down_proj") + ".weight", H, I, &d);
    out.insert(out.end(), up.begin(), up.end());
    out.insert(out.end(), down.begin(), down.end());
    written_.experts[{l, e}] = out;
    written_.routed_params += 3 * I * H;
  }

  // GPT-OSS: gate_up (E, H, 2I), down (E, I, H); transformers v5: gate_up (E, 2I, H), down
  // (E, H, I). Expert e's slice is its part, flattened as stored.
  void write_fused(const std::string& moe, int l) {
    const int64_t E = s_.experts, H = s_.hidden, I = s_.inter;
    std::vector<float> gate_up, down;
    for (int e = 0; e < E; ++e) {
      const std::vector<float>& v = raw_[{l, int(e)}];
      gate_up.insert(gate_up.end(), v.begin(), v.begin() + 2 * I * H);
      down.insert(down.end(), v.begin() + 2 * I * H, v.end());
    }
    const bool oss = s_.family == "gpt_oss" || s_.family == "llama4";  // (E, H, 2I) (E, I, H)
    const std::vector<float> gu =
        add(moe + "experts.gate_up_proj",
            oss ? std::vector<int64_t>{E, H, 2 * I} : std::vector<int64_t>{E, 2 * I, H}, gate_up);
    const std::vector<float> dn =
        add(moe + "experts.down_proj",
            oss ? std::vector<int64_t>{E, I, H} : std::vector<int64_t>{E, H, I}, down);
    if (s_.family == "gpt_oss") {
      add(moe + "experts.gate_up_proj_bias", {E, 2 * I}, normal(E * 2 * I), false);
      add(moe + "experts.down_proj_bias", {E, H}, normal(E * H), false);
    }
    for (int e = 0; e < E; ++e) {
      std::vector<float> x(gu.begin() + e * 2 * I * H, gu.begin() + (e + 1) * 2 * I * H);
      x.insert(x.end(), dn.begin() + e * I * H, dn.begin() + (e + 1) * I * H);
      written_.experts[{l, e}] = x;
      written_.routed_params += 3 * I * H;
    }
  }

  void save(const QString& dir) {
    QDir().mkpath(dir);
    const std::map<std::string, std::string> meta = {{"format", "pt"}};
    if (s_.shards <= 1) {
      unipool::write_safetensors_atomic((dir + "/model.safetensors").toStdString(), meta, tensors_);
    } else {
      QJsonObject map;
      std::vector<std::vector<TensorRecord>> parts(size_t(s_.shards));
      for (size_t i = 0; i < tensors_.size(); ++i) parts[i % parts.size()].push_back(tensors_[i]);
      for (int k = 0; k < s_.shards; ++k) {
        const QString name = QString("model-%1-of-%2.safetensors")
                                 .arg(k + 1, 5, 10, QChar('0'))
                                 .arg(s_.shards, 5, 10, QChar('0'));
        unipool::write_safetensors_atomic((dir + "/" + name).toStdString(), meta, parts[size_t(k)]);
        for (const auto& t : parts[size_t(k)]) map[QString::fromStdString(t.name)] = name;
      }
      write_json(dir + "/model.safetensors.index.json",
                 QJsonObject{{"metadata", QJsonObject{{"total_size", 0}}}, {"weight_map", map}});
    }
    if (s_.config) write_json(dir + "/config.json", config());
  }

  QJsonObject config() const {
    const QString f = QString::fromStdString(s_.family == "v5" ? "qwen3_moe" : s_.family);
    QJsonObject c{{"model_type", f},
                  {"num_hidden_layers", s_.layers},
                  {"hidden_size", s_.hidden},
                  {"vocab_size", 64},
                  {"num_experts_per_tok", s_.top_k}};
    if (f == "mixtral" || f == "gpt_oss" || f == "llama4") c["num_local_experts"] = s_.experts;
    if (f == "llama4") c["model_type"] = "llama4_text";
    if (f == "gpt_oss") c.remove("num_experts_per_tok"), c["experts_per_token"] = s_.top_k;
    if (f == "olmoe" || f.startsWith("qwen")) c["num_experts"] = s_.experts;
    if (f == "deepseek_v3") {
      c["n_routed_experts"] = s_.experts;
      c["n_shared_experts"] = 1;
      c["first_k_dense_replace"] = 1;
      c["moe_intermediate_size"] = s_.inter;
      if (s_.dtype == DType::F8_E4M3)
        c["quantization_config"] = QJsonObject{{"quant_method", "fp8"},
                                               {"fmt", "e4m3"},
                                               {"weight_block_size", QJsonArray{4, 4}},
                                               {"activation_scheme", "dynamic"}};
    }
    return c;
  }

  static void write_json(const QString& path, const QJsonObject& o) {
    QFile f(path);
    f.open(QIODevice::WriteOnly);
    f.write(QJsonDocument(o).toJson());
  }

  Spec s_;
  std::mt19937 rng_;
  std::vector<TensorRecord> tensors_;
  std::map<std::pair<int, int>, std::vector<float>> raw_;
  Written written_;
};

inline Written write(const QString& dir, const Spec& s) { return Writer(s).write(dir); }

// The exception's message when `f` throws E, "" when it does not.
template <typename E, typename F>
QString message_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}


}  // namespace fixtures
