// Growing and shrinking the expert pools while training goes on.
//
// Every pool of the model changes from Mg to Mg' experts. Growing splits the busiest experts:
// a new expert is a copy of one plus small noise, and every router row that pointed at the
// source is copied plus its own small noise, so the twins can drift apart. Shrinking drops
// the least-loaded experts or the ones named. Surviving rows keep their AdamW moments; new rows
// start with zero moments; the NormRouter constant is recomputed for the new Mg.
#include "training/resize.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "model/param_names.h"
#include "unipool/random.h"

namespace unipool {

namespace {

constexpr double kSplitNoise = 1e-2;  // relative to the source row's RMS

// rows: for each new row, the old row it comes from; fresh[i]: row i is a new copy, which gets
// noise of kSplitNoise times the source row's RMS so the twins can drift apart.
at::Tensor remap_rows(const at::Tensor& old, const std::vector<int64_t>& rows,
                      const std::vector<bool>& fresh, Rng& noise_rng) {
  torch::NoGradGuard no_grad;
  const at::Tensor index = at::tensor(rows, at::TensorOptions().dtype(at::kLong));
  at::Tensor out = old.detach().index_select(0, index).contiguous();
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!fresh[i]) continue;
    at::Tensor row = out[int64_t(i)];
    const double rms = row.pow(2).mean().sqrt().item<double>();
    at::Tensor eps = at::empty(row.sizes(), at::TensorOptions().dtype(at::kDouble));
    double* ep = eps.data_ptr<double>();
    for (int64_t j = 0; j < eps.numel(); ++j) ep[j] = noise_rng.normal() * kSplitNoise * rms;
    row.add_(eps.to(row.scalar_type()));
  }
  return out;
}

}  // namespace

ResizeReport resize_pools(EngineState& m, int new_mg, const std::vector<int>& drop) {
  ModelConfig c = m.config;
  const int old_mg = c.experts_per_group, groups = c.n_groups(), G = c.layers_per_group;
  if (c.lock.enabled) {
    // The partition gives each layer K of the K x L experts: another size would break it.
    throw std::invalid_argument("a UniPool-lock run's pool size is fixed (K experts x L layers)");
  }
  if (new_mg < 1 || new_mg > 65536) throw std::invalid_argument("pool size must be in [1, 65536]");
  if (new_mg < c.top_k) {
    throw std::invalid_argument("pool size " + std::to_string(new_mg) + " is below top_k " +
                                std::to_string(c.top_k));
  }
  if (!drop.empty() && new_mg >= old_mg) {
    throw std::invalid_argument("experts to drop were named, but the pool is not shrinking");
  }
  ResizeReport report;
  report.old_experts_per_group = old_mg;
  report.new_experts_per_group = new_mg;

  // Load of each local expert of each pool, summed over the pool's layers.
  std::vector<double> load(static_cast<size_t>(groups) * size_t(old_mg), 0.0);
  for (int l = 0; l < c.n_layers; ++l)
    for (int i = 0; i < old_mg; ++i)
      load[size_t(l / G) * size_t(old_mg) + size_t(i)] += m.recent_load[size_t(l * old_mg + i)];

  std::vector<int64_t> global_rows;  // new global expert -> old global expert
  std::vector<bool> global_fresh;
  std::vector<std::vector<int64_t>> local_rows(
      static_cast<size_t>(groups));  // per pool: new local -> old local
  std::vector<std::vector<bool>> local_fresh(static_cast<size_t>(groups));
  std::set<int> named(drop.begin(), drop.end());
  if (named.size() != drop.size()) throw std::invalid_argument("an expert is named twice");
  for (int e : named) {
    if (e < 0 || e >= groups * old_mg) {
      throw std::invalid_argument("expert " + std::to_string(e) + " does not exist (pool has " +
                                  std::to_string(groups * old_mg) + ")");
    }
  }
  for (int g = 0; g < groups; ++g) {
    std::vector<int64_t> order(
        static_cast<size_t>(old_mg));  // local experts, busiest first (stable)
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return load[size_t(g * old_mg + a)] > load[size_t(g * old_mg + b)];
    });
    std::vector<int64_t>& rows = local_rows[size_t(g)];
    std::vector<bool>& fresh = local_fresh[size_t(g)];
    if (new_mg >= old_mg) {
      for (int i = 0; i < old_mg; ++i) rows.push_back(i);
      fresh.assign(size_t(old_mg), false);
      for (int j = 0; j < new_mg - old_mg; ++j) {
        rows.push_back(order[size_t(j % old_mg)]);
        fresh.push_back(true);
        report.split.push_back(
            {g * new_mg + old_mg + j, g * old_mg + int(order[size_t(j % old_mg)])});
      }
    } else {
      std::set<int64_t> removed;
      if (named.empty()) {
        for (int j = 0; j < old_mg - new_mg; ++j) removed.insert(order[size_t(old_mg - 1 - j)]);
      } else {
        for (int e : named)
          if (e / old_mg == g) removed.insert(e % old_mg);
        if (int(removed.size()) != old_mg - new_mg) {
          throw std::invalid_argument("pool " + std::to_string(g) + " needs exactly " +
                                      std::to_string(old_mg - new_mg) + " experts named to drop");
        }
      }
      for (int i = 0; i < old_mg; ++i) {
        if (removed.count(i)) {
          report.removed.push_back(g * old_mg + i);
        } else {
          rows.push_back(i);
          fresh.push_back(false);
        }
      }
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      global_rows.push_back(int64_t(g) * old_mg + rows[i]);
      global_fresh.push_back(fresh[i]);
    }
  }

  c.experts_per_group = new_mg;
  refresh_router_constant(c);
  validate(c);

  Rng noise(hash_u64(m.options.seed, kSaltResize, uint64_t(m.step), uint64_t(new_mg)));
  auto remap_param = [&](const std::string& name, const std::vector<int64_t>& rows,
                         const std::vector<bool>& fresh) {
    at::Tensor& p = m.params.get(name);
    at::Tensor updated = remap_rows(p, rows, fresh, noise);
    m.optimizer.remap_rows(name, rows, fresh);
    p = updated.requires_grad_(true);
  };
  for (const std::string& name :
       {param_names::kPoolGate, param_names::kPoolUp, param_names::kPoolDown})
    remap_param(name, global_rows, global_fresh);
  std::vector<double> new_load(static_cast<size_t>(c.n_layers) * size_t(new_mg), 0.0);
  for (int l = 0; l < c.n_layers; ++l) {
    const int g = l / G;
    remap_param(param_names::router_weight(l), local_rows[size_t(g)], local_fresh[size_t(g)]);
    for (int i = 0; i < new_mg; ++i) {
      if (!local_fresh[size_t(g)][size_t(i)])
        new_load[size_t(l * new_mg + i)] =
            m.recent_load[size_t(l * old_mg + local_rows[size_t(g)][size_t(i)])];
    }
  }
  m.recent_load = std::move(new_load);
  m.config = c;
  return report;
}

}  // namespace unipool
