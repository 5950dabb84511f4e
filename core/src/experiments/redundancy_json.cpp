// `unipool inspect --json` for MoE checkpoints: architecture, pool view and the redundancy
// summary (the full similarity matrix stays out: it is (layers x experts)^2).
#include <nlohmann/json.hpp>

#include "unipool/redundancy.h"

namespace unipool {

namespace {

nlohmann::json pair_json(const RedundancyReport& r, const ExpertPair& p) {
  return {{"layer_a", r.labels[size_t(p.bank_a)]},
          {"expert_a", p.expert_a},
          {"layer_b", r.labels[size_t(p.bank_b)]},
          {"expert_b", p.expert_b},
          {"cosine", p.cosine}};
}

}  // namespace

std::string redundancy_json(const MoeCheckpoint& ck, const RedundancyReport* r) {
  const MoeArchitecture& a = ck.architecture();
  const PoolView v = pool_view(a);
  nlohmann::json j = {{"path", ck.path()},
                      {"files", ck.files().size()},
                      {"bytes", ck.total_bytes()},
                      {"family", a.family},
                      {"model_type", a.model_type},
                      {"layers", a.n_layers},
                      {"moe_layers", a.moe_layers},
                      {"dense_layers", a.dense_layers},
                      {"experts_per_layer", a.experts_per_bank},
                      {"shared_experts_per_layer", a.shared_per_layer},
                      {"top_k", a.top_k},
                      {"hidden_size", a.hidden},
                      {"expert_hidden_size", a.expert_hidden},
                      {"shared_expert_hidden_size", a.shared_hidden},
                      {"parameters",
                       {{"total", a.total_params},
                        {"routed_experts", a.routed_params},
                        {"shared_experts", a.shared_params},
                        {"active_per_token", a.active_params},
                        {"by_dtype", a.dtype_params}}},
                      {"pool_shared", a.pool_shared},
                      {"unipool_view",
                       {{"pool_experts", v.pool_experts},
                        {"expert_parameters", v.expert_params},
                        {"pool_41_6_percent", v.reduced_low},
                        {"pool_66_7_percent", v.reduced_high},
                        {"parameters_saved_41_6", v.params_saved_low},
                        {"parameters_saved_66_7", v.params_saved_high}}},
                      {"notes", a.notes}};
  if (!r) return j.dump(2);
  nlohmann::json s = {{"experts_compared", r->banks.size() * size_t(r->experts)},
                      {"layers_compared", r->labels},
                      {"exact", r->exact},
                      {"rows_sampled_per_matrix", r->rows_sampled},
                      {"rows_per_matrix", r->rows_total},
                      {"values_sampled_per_expert", r->values_sampled},
                      {"values_per_expert", r->values_total},
                      {"standard_error", r->standard_error},
                      {"bytes_read", r->bytes_read},
                      {"seconds", r->seconds},
                      {"notes", r->notes}};
  for (const ExpertPair& p : r->top_pairs) s["top_pairs"].push_back(pair_json(*r, p));
  for (size_t b = 0; b < r->nearest.size(); ++b) {
    if (r->labels.size() < 2) break;
    s["nearest_by_layer"].push_back({{"layer", r->labels[b]},
                                     {"mean_best_cosine", r->nearest[b].mean_best},
                                     {"best", pair_json(*r, r->nearest[b].best)}});
  }
  s["histogram"] = {
      {"edges", r->histogram_edges}, {"within_layer", r->within}, {"cross_layer", r->cross}};
  s["mean_cosine_within_layer"] = r->mean_within;
  s["mean_cosine_cross_layer"] = r->mean_cross;
  std::vector<double> mean_norm;
  for (size_t b = 0; b < r->banks.size(); ++b) {
    double m = 0;
    for (int e = 0; e < r->experts; ++e) m += r->norms[b * size_t(r->experts) + size_t(e)];
    mean_norm.push_back(m / std::max(1, r->experts));
  }
  s["mean_expert_norm_by_layer"] = mean_norm;
  s["router_layers"] = r->router_layers;
  s["router_similarity"] = r->router_similarity;
  s["router_columns_compared"] = r->router_columns_used;
  j["redundancy"] = s;
  return j.dump(2);
}

}  // namespace unipool
