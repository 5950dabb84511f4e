// The pool-size x aux-coefficient grid of a sweep as tables (what the Experiments tab's
// heatmap and the CSV export show).
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "unipool/experiments.h"

namespace unipool {

SweepGrid sweep_grid(const SweepState& state) {
  SweepGrid g;
  std::set<int> pools;
  std::set<double> auxes;
  for (const SweepRun& r : state.runs)
    if (r.kind == "unipool") {
      pools.insert(r.experts_per_group);
      auxes.insert(r.aux_coef);
    }
  g.pool_sizes.assign(pools.begin(), pools.end());
  g.aux_coefs.assign(auxes.begin(), auxes.end());
  const size_t cells = g.pool_sizes.size() * g.aux_coefs.size();
  std::vector<std::vector<double>> loss(cells), zero(cells);
  for (const SweepRun& r : state.runs) {
    if (r.kind != "unipool" || !r.done) continue;
    const size_t row = size_t(std::find(g.aux_coefs.begin(), g.aux_coefs.end(), r.aux_coef) -
                              g.aux_coefs.begin());
    const size_t col = size_t(std::find(g.pool_sizes.begin(), g.pool_sizes.end(),
                                        r.experts_per_group) - g.pool_sizes.begin());
    const size_t cell = row * g.pool_sizes.size() + col;
    loss[cell].push_back(r.valid_loss);
    if (std::isfinite(r.zero_gate_all)) zero[cell].push_back(r.zero_gate_all);
  }
  auto mean = [](const std::vector<double>& v) {
    if (v.empty()) return std::nan("");
    double s = 0;
    for (double x : v) s += x;
    return s / double(v.size());
  };
  for (size_t c = 0; c < cells; ++c) {
    g.valid_loss.push_back(mean(loss[c]));
    g.zero_gate.push_back(mean(zero[c]));
    g.seeds_done.push_back(int(loss[c].size()));
  }
  return g;
}

std::string sweep_grid_csv(const SweepState& state) {
  std::ostringstream out;
  out.precision(8);
  size_t layers = 0;
  for (const SweepRun& r : state.runs) layers = std::max(layers, r.zero_gate.size());
  out << "run,pool_size,aux_coef,seed,done,valid_loss,zero_gate_all";
  for (size_t l = 0; l < layers; ++l) out << ",zero_gate_l" << l;
  out << "\n";
  for (const SweepRun& r : state.runs) {
    if (r.kind != "unipool") continue;
    out << r.name << "," << r.experts_per_group << "," << r.aux_coef << "," << r.seed << ","
        << (r.done ? 1 : 0) << ",";
    if (r.done) out << r.valid_loss << "," << r.zero_gate_all;
    else out << ",";
    for (size_t l = 0; l < layers; ++l)
      out << "," << (l < r.zero_gate.size() ? std::to_string(r.zero_gate[l]) : std::string());
    out << "\n";
  }
  return out.str();
}

}  // namespace unipool
