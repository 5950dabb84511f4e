// Sampled cross-layer expert similarity (unipool/redundancy.h). The Gram products run on
// LibTorch's matrix multiply; the rows are read in passes so that the sample held in memory
// stays under ~256 MB whatever the checkpoint's size.
#include "unipool/redundancy.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <queue>
#include <set>

#include "unipool/random.h"

namespace unipool {

namespace {

constexpr int64_t kPassBytes = int64_t(256) << 20;
constexpr int kTopPairs = 20;
constexpr int kHistogramBins = 40;
constexpr int64_t kPrefetchAhead = 8;  // experts whose sampled rows are requested in advance

// k <= total distinct rows of `total`, in random order: Floyd's sampling (O(k), whatever the
// matrix's height), then shuffled so that any prefix is a random subset.
std::vector<int64_t> choose_rows(int64_t total, int64_t k, uint64_t seed) {
  k = std::clamp<int64_t>(k, 0, total);
  Rng rng(seed);
  std::set<int64_t> chosen;
  std::vector<int64_t> out;
  for (int64_t j = total - k; j < total; ++j) {
    const int64_t t = int64_t(rng.next() % uint64_t(j + 1));
    const int64_t pick = chosen.count(t) ? j : t;
    chosen.insert(pick);
    out.push_back(pick);
  }
  for (size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[rng.next() % i]);
  return out;
}

// Rows to sample from a matrix of `total`: an even number (the two halves equal), at least
// 2, at most all of them (then possibly odd: every row, no sampling error).
int64_t even_sample(int64_t want, int64_t total) {
  const int64_t k = std::max<int64_t>(2, want) / 2 * 2;
  return k >= total ? total : k;
}

// One matrix's sampled rows in a pass, for each half.
struct PartRows {
  int part = 0;
  std::vector<int64_t> half[2];
};

struct Pass {
  std::vector<PartRows> parts;
  int64_t values[2] = {0, 0};  // per expert, per half
};

std::vector<Pass> plan_passes(const std::vector<std::vector<int64_t>>& order,
                              const std::vector<int64_t>& cols, int64_t n) {
  const int64_t budget = std::max<int64_t>(kPassBytes / (4 * std::max<int64_t>(n, 1)), 1);
  std::vector<Pass> passes(1);
  int64_t used = 0;
  for (size_t p = 0; p < order.size(); ++p) {
    const size_t k = order[p].size(), first_b = (k + 1) / 2;  // A: the first half drawn
    for (size_t i = 0; i < k; ++i) {
      if (used > 0 && used + cols[p] > budget) {
        passes.emplace_back();
        used = 0;
      }
      Pass& pass = passes.back();
      if (pass.parts.empty() || pass.parts.back().part != int(p))
        pass.parts.push_back({int(p), {}});
      const int h = i < first_b ? 0 : 1;
      pass.parts.back().half[h].push_back(order[p][i]);
      pass.values[h] += cols[p];
      used += cols[p];
    }
  }
  for (Pass& pass : passes)
    for (PartRows& r : pass.parts)
      for (auto& h : r.half) std::sort(h.begin(), h.end());
  return passes;
}

// Cosine from a Gram matrix: G_ij / sqrt(G_ii G_jj) ((n, n) float).
at::Tensor cosine(const at::Tensor& gram) {
  const at::Tensor inv = gram.diagonal().clamp_min(1e-30).rsqrt();
  return gram * inv.unsqueeze(1) * inv.unsqueeze(0);
}

void summarise(RedundancyReport& r, const float* c, int64_t n) {
  const int E = r.experts, B = int(r.banks.size());
  r.histogram_edges.resize(kHistogramBins + 1);
  for (int i = 0; i <= kHistogramBins; ++i)
    r.histogram_edges[size_t(i)] = -1.0 + 2.0 * i / kHistogramBins;
  r.within.assign(kHistogramBins, 0);
  r.cross.assign(kHistogramBins, 0);
  double sum_within = 0, sum_cross = 0;
  r.nearest.assign(size_t(B), {});
  const auto greater = [](const ExpertPair& a, const ExpertPair& b) { return a.cosine > b.cosine; };
  std::priority_queue<ExpertPair, std::vector<ExpertPair>, decltype(greater)> top(greater);
  for (int64_t i = 0; i < n; ++i) {
    const int bi = int(i / E);
    double best = -2;
    int64_t best_j = -1;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const int bj = int(j / E);
      const double v = c[i * n + j];
      if (!std::isfinite(v)) continue;  // a corrupt expert (NaN weights) joins no summary
      if (bi != bj && v > best) best = v, best_j = j;
      if (j < i) continue;
      const int bin = std::clamp(int((v + 1.0) / 2.0 * kHistogramBins), 0, kHistogramBins - 1);
      (bi == bj ? r.within : r.cross)[size_t(bin)]++;
      (bi == bj ? sum_within : sum_cross) += v;
      if (bi != bj || B == 1) {
        top.push({bi, int(i % E), bj, int(j % E), v});
        if (int(top.size()) > kTopPairs) top.pop();
      }
    }
    if (best_j >= 0) {
      BankNearest& nb = r.nearest[size_t(bi)];
      nb.mean_best += best / E;
      if (best > nb.best.cosine || nb.best.bank_b == nb.best.bank_a)
        nb.best = {bi, int(i % E), int(best_j / E), int(best_j % E), best};
    }
  }
  const auto pairs = [](const std::vector<int64_t>& h) {
    int64_t n = 0;
    for (int64_t c : h) n += c;
    return n;
  };
  if (const int64_t n = pairs(r.within)) r.mean_within = sum_within / double(n);
  if (const int64_t n = pairs(r.cross)) r.mean_cross = sum_cross / double(n);
  for (; !top.empty(); top.pop()) r.top_pairs.push_back(top.top());
  std::reverse(r.top_pairs.begin(), r.top_pairs.end());
}

void compare_routers(const MoeCheckpoint& ck, const RedundancyOptions& o, RedundancyReport& r,
                     const ProgressFn& progress) {
  const MoeArchitecture& a = ck.architecture();
  if (a.routers.empty()) return;
  const int64_t H = a.routers[0].weight.cols;
  const int64_t c = std::min<int64_t>(H, std::max(1, o.router_columns));
  std::vector<int64_t> columns = choose_rows(H, c, hash_u64(o.seed, 0x726f75));
  std::sort(columns.begin(), columns.end());
  r.router_columns_used = int(c);
  std::vector<at::Tensor> rows;  // (E, c) each, unit rows
  for (const RouterRef& router : a.routers) {
    if (progress && !progress(1.0, "reading the router of layer " + std::to_string(router.layer)))
      throw Cancelled("cancelled");
    const MatrixRef& w = router.weight;
    std::vector<int64_t> all(static_cast<size_t>(w.rows));
    for (int64_t i = 0; i < w.rows; ++i) all[size_t(i)] = i;
    at::Tensor full = at::empty({w.rows, w.cols}, at::kFloat);
    ck.read_rows(w, all, full.data_ptr<float>());
    ck.release(w);
    const at::Tensor picked = full.index_select(1, at::tensor(columns, at::kLong));
    rows.push_back(picked / picked.norm(2, 1, true).clamp_min(1e-30));
    r.router_layers.push_back(router.layer);
  }
  const int64_t R = int64_t(rows.size());
  r.router_similarity.assign(size_t(R * R), 0.f);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < R; ++j)
      r.router_similarity[size_t(i * R + j)] =
          rows[size_t(i)].mm(rows[size_t(j)].t()).abs().amax(1).mean().item<float>();
}

}  // namespace

RedundancyReport analyse_redundancy(const MoeCheckpoint& ck, const RedundancyOptions& o,
                                    const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  const MoeArchitecture& a = ck.architecture();
  RedundancyReport r;
  r.experts = a.experts_per_bank;
  const int nb = int(a.banks.size());
  if (r.experts > o.max_experts)
    throw MoeLayoutError(std::to_string(r.experts) + " experts per layer: more than the " +
                         std::to_string(o.max_experts) + " the similarity matrix holds");
  // Whole banks are kept, as many as fit under the cap (n <= max_experts).
  const int fit = std::max(1, o.max_experts / std::max(1, r.experts));
  const int stride = (nb + fit - 1) / fit;
  for (int b = 0; b < nb; b += stride) {
    r.banks.push_back(b);
    r.labels.push_back(a.banks[size_t(b)].label);
  }
  if (stride > 1)
    r.notes.push_back("one layer in " + std::to_string(stride) + " compared (" +
                      std::to_string(r.banks.size()) + " of " + std::to_string(nb) +
                      "): the matrix is capped at " + std::to_string(o.max_experts) + " experts");
  const int64_t n = int64_t(r.banks.size()) * r.experts;
  const ExpertRef& shape = a.banks[0].experts[0];
  const size_t P = shape.parts.size();
  std::vector<int64_t> cols(P), elem(P);
  for (size_t p = 0; p < P; ++p) {
    r.rows_total.push_back(shape.parts[p].rows);
    cols[p] = shape.parts[p].cols;
    const MappedSafetensors& f = *ck.files()[size_t(shape.parts[p].file)];
    const TensorEntry* t = f.find(shape.parts[p].tensor);
    if (!t) throw FormatError(f.path() + ": no tensor " + shape.parts[p].tensor);
    elem[p] = int64_t(dtype_size(t->dtype));
    r.rows_sampled.push_back(o.rows <= 0 ? shape.parts[p].rows
                                         : even_sample(o.rows, shape.parts[p].rows));
  }
  const auto sampled_values = [&] {
    int64_t v = 0;
    for (size_t p = 0; p < P; ++p) v += r.rows_sampled[p] * cols[p];
    return v;
  };
  if (o.rows > 0 && 2.0 * double(n) * double(n) * double(sampled_values()) > o.max_flops) {
    const double shrink = o.max_flops / (2.0 * double(n) * double(n) * double(sampled_values()));
    for (size_t p = 0; p < P; ++p)
      r.rows_sampled[p] = even_sample(int64_t(double(r.rows_sampled[p]) * shrink), r.rows_total[p]);
    r.notes.push_back("sample shrunk to " + std::to_string(r.rows_sampled[0]) +
                      " rows per matrix to bound the work");
  }
  r.values_sampled = sampled_values();
  r.values_total = shape.params();
  r.exact = r.values_sampled == r.values_total;
  std::vector<std::vector<int64_t>> order(P);
  for (size_t p = 0; p < P; ++p)
    order[p] = choose_rows(r.rows_total[p], r.rows_sampled[p], hash_u64(o.seed, p));
  const std::vector<Pass> passes = plan_passes(order, cols, n);

  at::Tensor gram[2] = {at::zeros({n, n}, at::kFloat), at::zeros({n, n}, at::kFloat)};
  std::vector<double> squares(size_t(n) * P, 0.0);
  for (size_t q = 0; q < passes.size(); ++q) {
    const Pass& pass = passes[q];
    at::Tensor x[2] = {at::empty({n, pass.values[0]}, at::kFloat),
                       at::empty({n, pass.values[1]}, at::kFloat)};
    const auto expert_at = [&](int64_t i) -> const ExpertRef& {
      return a.banks[size_t(r.banks[size_t(i / r.experts)])].experts[size_t(i % r.experts)];
    };
    // The disk serves scattered rows best many at a time: the rows of the next experts are
    // requested ahead of reading them (a cold 24 GB checkpoint: see docs/moe-checkpoints.md).
    const auto prefetch = [&](int64_t i) {
      if (i >= n) return;
      for (const PartRows& pr : pass.parts)
        for (const auto& rows : pr.half)
          if (!rows.empty()) ck.prefetch_rows(expert_at(i).parts[size_t(pr.part)], rows);
    };
    for (int64_t i = 0; i < kPrefetchAhead; ++i) prefetch(i);
    for (int64_t i = 0; i < n; ++i) {
      const int bank = r.banks[size_t(i / r.experts)];
      const ExpertRef& e = expert_at(i);
      prefetch(i + kPrefetchAhead);
      if (progress && i % 16 == 0 &&
          !progress((double(q) + double(i) / double(n)) / double(passes.size()),
                    "reading experts of " + a.banks[size_t(bank)].label))
        throw Cancelled("cancelled");
      for (int h = 0; h < 2; ++h) {
        float* out = x[h].data_ptr<float>() + i * pass.values[h];
        for (const PartRows& pr : pass.parts) {
          const auto& rows = pr.half[h];
          if (rows.empty()) continue;
          ck.read_rows(e.parts[size_t(pr.part)], rows, out);
          const int64_t m = int64_t(rows.size()) * cols[size_t(pr.part)];
          double& sq = squares[size_t(i) * P + size_t(pr.part)];
          for (int64_t k = 0; k < m; ++k) sq += double(out[k]) * double(out[k]);
          // Each matrix stands for all its rows: a sampled row weighs rows / sampled, so a
          // short matrix (Mixtral's w2, 4096 rows against 14336) counts for what it is.
          const float w = float(std::sqrt(double(r.rows_total[size_t(pr.part)]) /
                                          double(r.rows_sampled[size_t(pr.part)])));
          if (w != 1.0f)
            for (int64_t k = 0; k < m; ++k) out[k] *= w;
          r.bytes_read += uint64_t(m * elem[size_t(pr.part)]);
          out += m;
        }
      }
      for (const MatrixRef& m : e.parts) ck.release(m);
    }
    for (int h = 0; h < 2; ++h)
      if (pass.values[h] > 0) gram[h].addmm_(x[h], x[h].t());
  }
  if (progress && !progress(1.0, "comparing experts")) throw Cancelled("cancelled");
  const at::Tensor c = cosine(gram[0] + gram[1]).contiguous();
  if (!r.exact) {
    // Half the difference of the halves' estimates: the whole sample's standard error.
    const at::Tensor diff = (cosine(gram[0]) - cosine(gram[1])) / 2;
    const at::Tensor upper = at::ones({n, n}, at::kBool).triu(1);
    // Finite population: the halves are drawn without replacement from rows that are not
    // infinitely many; a sample that is a large share of them errs less.
    const double share = double(r.values_sampled) / double(r.values_total);
    r.standard_error = n > 1 ? diff.masked_select(upper).pow(2).mean().sqrt().item<double>() *
                                   std::sqrt(std::max(0.0, 1.0 - share))
                             : 0.0;
  }
  r.similarity.assign(c.data_ptr<float>(), c.data_ptr<float>() + n * n);
  r.norms.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t p = 0; p < P; ++p)
      s += squares[size_t(i) * P + p] * double(r.rows_total[p]) / double(r.rows_sampled[p]);
    r.norms[size_t(i)] = std::sqrt(s);
  }
  summarise(r, r.similarity.data(), n);
  compare_routers(ck, o, r, progress);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace unipool
