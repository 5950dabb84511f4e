// The random-routing probe (paper section 3): how much each layer's learned routing matters,
// measured as the loss and next-byte accuracy change when it routes at random.
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "unipool/experiments.h"

namespace unipool {

void mean_and_spread(const std::vector<double>& v, double* mean, double* spread) {
  double m = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  *mean = m;
  *spread = v.size() > 1 ? std::sqrt(s / double(v.size() - 1)) : 0.0;  // sample spread
}

ProbeResult run_probe(const Engine& engine, const std::string& label, const std::string& text,
                      int seq, int seeds, int64_t max_windows, const Progress& progress) {
  const int L = engine.config().n_layers;
  std::vector<int> layers(static_cast<size_t>(L), 0);
  for (int l = 0; l < L; ++l) layers[static_cast<size_t>(l)] = l;
  return run_probe(
      [&](const std::vector<bool>& random, uint64_t draw) {
        return engine.evaluate(text, seq, random, max_windows, draw);
      },
      layers, label, seq, seeds, progress);
}

ProbeResult run_probe(const ProbeEvaluate& evaluate, const std::vector<int>& layers,
                      const std::string& label, int seq, int seeds, const Progress& progress) {
  if (seeds < 1) throw std::invalid_argument("probe: seeds must be >= 1");
  const int L = int(layers.size());
  ProbeResult r;
  r.model = label;
  r.n_layers = L;
  r.seeds = seeds;
  r.seq = seq;
  // The conditions: none, each single layer, and each "from k down" (rows name the model's
  // own layer numbers; the switches are indexed like `layers`).
  std::vector<std::pair<ProbeRow, std::vector<bool>>> conditions;
  conditions.push_back({ProbeRow{"none", "none", -1, {}, {}}, std::vector<bool>(size_t(L), false)});
  for (int l = 0; l < L; ++l) {
    std::vector<bool> one(size_t(L), false);
    one[size_t(l)] = true;
    const int at = layers[size_t(l)];
    conditions.push_back({ProbeRow{"layer " + std::to_string(at), "layer", at, {}, {}}, one});
  }
  for (int k = 0; k < L; ++k) {
    std::vector<bool> from(size_t(L), false);
    for (int l = k; l < L; ++l) from[size_t(l)] = true;
    const int at = layers[size_t(k)];
    conditions.push_back({ProbeRow{"from " + std::to_string(at), "from", at, {}, {}}, from});
  }
  // "none" has no random draws: one evaluation serves every seed.
  const int64_t total = 1 + int64_t(conditions.size() - 1) * seeds;
  int64_t done = 0;
  auto tick = [&] {
    ++done;
    if (progress && !progress(done, total)) throw Cancelled("probe cancelled");
  };
  for (auto& [row, random] : conditions) {
    const int draws = row.kind == "none" ? 1 : seeds;
    for (int s = 0; s < draws; ++s) {
      const EvalResult e = evaluate(random, uint64_t(s));
      row.loss.push_back(e.loss);
      row.accuracy.push_back(e.accuracy);
      r.n_targets = e.n_targets;
      tick();
    }
  }
  const double base_loss = conditions[0].first.loss[0];
  const double base_acc = conditions[0].first.accuracy[0];
  for (auto& [row, random] : conditions) {
    std::vector<double> dl, da;
    for (size_t i = 0; i < row.loss.size(); ++i) {
      dl.push_back(row.loss[i] - base_loss);
      da.push_back(row.accuracy[i] - base_acc);
    }
    mean_and_spread(dl, &row.d_loss_mean, &row.d_loss_std);
    mean_and_spread(da, &row.d_accuracy_mean, &row.d_accuracy_std);
    r.rows.push_back(row);
  }
  return r;
}

std::string to_json(const ProbeResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const ProbeRow& row : r.rows)
    rows.push_back({{"name", row.name},
                    {"kind", row.kind},
                    {"layer", row.layer},
                    {"loss", row.loss},
                    {"accuracy", row.accuracy},
                    {"d_loss_mean", row.d_loss_mean},
                    {"d_loss_std", row.d_loss_std},
                    {"d_accuracy_mean", row.d_accuracy_mean},
                    {"d_accuracy_std", row.d_accuracy_std}});
  return nlohmann::json{{"model", r.model}, {"n_layers", r.n_layers},   {"seeds", r.seeds},
                        {"seq", r.seq},     {"n_targets", r.n_targets}, {"rows", rows}}
      .dump();
}

ProbeResult probe_from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  ProbeResult r;
  r.model = j.at("model").get<std::string>();
  r.n_layers = j.at("n_layers").get<int>();
  r.seeds = j.at("seeds").get<int>();
  r.seq = j.at("seq").get<int>();
  r.n_targets = j.at("n_targets").get<int64_t>();
  for (const auto& row : j.at("rows")) {
    ProbeRow p;
    p.name = row.at("name").get<std::string>();
    p.kind = row.at("kind").get<std::string>();
    p.layer = row.at("layer").get<int>();
    p.loss = row.at("loss").get<std::vector<double>>();
    p.accuracy = row.at("accuracy").get<std::vector<double>>();
    p.d_loss_mean = row.at("d_loss_mean").get<double>();
    p.d_loss_std = row.at("d_loss_std").get<double>();
    p.d_accuracy_mean = row.at("d_accuracy_mean").get<double>();
    p.d_accuracy_std = row.at("d_accuracy_std").get<double>();
    r.rows.push_back(p);
  }
  return r;
}

std::string probe_csv(const ProbeResult& r) {
  std::ostringstream s;
  s.precision(10);
  s << "model,condition,kind,layer,loss_mean,d_loss_mean,d_loss_std,accuracy_mean,"
       "d_accuracy_mean,d_accuracy_std\n";
  for (const ProbeRow& row : r.rows) {
    double loss = 0, acc = 0;
    for (double v : row.loss) loss += v / double(row.loss.size());
    for (double v : row.accuracy) acc += v / double(row.accuracy.size());
    s << '"' << r.model << "\"," << row.name << ',' << row.kind << ',' << row.layer << ',' << loss
      << ',' << row.d_loss_mean << ',' << row.d_loss_std << ',' << acc << ',' << row.d_accuracy_mean
      << ',' << row.d_accuracy_std << '\n';
  }
  return s.str();
}

}  // namespace unipool
