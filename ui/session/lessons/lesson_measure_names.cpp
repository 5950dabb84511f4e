// The measures' names and meanings: the lesson format's vocabulary, which the parser checks
// expectations against (no run needed; lesson_measures.cpp measures a run).
#include "session/lessons/lesson_measures.h"

namespace unipool::studio {

namespace {

struct Measure {
  const char* name;
  const char* meaning;
};
const Measure kMeasures[] = {
    {"loss", "training loss, mean of the last 20 steps"},
    {"loss_change", "loss now minus loss when the step began"},
    {"loss_drop", "loss of the run's first 10 steps minus loss now"},
    {"valid_loss", "the last validation loss (after 'evaluate')"},
    {"valid_change", "the last validation loss minus the one before the step"},
    // Both count routed tokens only: zero-gate ones are "no expert" (SPEC section 9).
    {"imbalance", "worst layer's busiest expert over a fair share (1 = balanced), this step"},
    {"pool_imbalance", "the worst pool's busiest expert over a fair share, this step"},
    {"dead_experts", "experts no token reached during this step's training"},
    {"reuse", "distinct experts a token meets over L x top-k choices (1 = never the same twice)"},
    {"router_entropy", "mean normalised router entropy (1 = undecided, 0 = sure), this step"},
    {"zero_gate", "share of routing choices whose gate is 0 ('no expert'), this step"},
    {"pool_size", "experts in each pool (Mg)"},
    {"top_k", "experts per token"},
    {"locked", "1 once a UniPool-lock run's partition is locked, else 0"},
    {"routes_outside", "routes to experts a layer does not own, this step (lock runs)"},
    {"partition_coverage", "worst layer's share of routes its own experts took, this step"},
    {"step", "the run's training step"},
    // After 'probe exported' (the probe of the run exported as a downloaded model):
    {"probe_deep", "loss change with random routing from the middle MoE layer down (probe)"},
    {"probe_all", "loss change with random routing in every MoE layer (probe)"},
};

}  // namespace

const QStringList& lessonMeasures() {
  static const QStringList names = [] {
    QStringList out;
    for (const Measure& m : kMeasures) out << QString::fromLatin1(m.name);
    return out;
  }();
  return names;
}

QString measureMeaning(const QString& name) {
  for (const Measure& m : kMeasures)
    if (name == QLatin1String(m.name)) return QString::fromLatin1(m.meaning);
  return {};
}

}  // namespace unipool::studio
