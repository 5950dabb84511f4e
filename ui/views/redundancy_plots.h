// The Redundancy tab's plots, drawn from a RedundancyReport (unipool/redundancy.h).
#pragma once

#include <QString>

#include "session/moe_analysis.h"
#include "unipool/redundancy.h"

class QCustomPlot;

namespace unipool::studio {

// The (banks x experts)^2 cosine matrix from its cells (similarity_map(r)), banks in order with
// lines between them; above 1024 experts each cell is a k x k block (the axis says so).
// Returns k.
int drawSimilarity(QCustomPlot* plot, const RedundancyReport& r, const SimilarityMap& cells);
// Share of pairs per cosine bin: pairs within a layer against pairs across layers, and (when
// given) another checkpoint's pairs across layers, labelled `reference_name`.
void drawSimilarityHistogram(QCustomPlot* plot, const RedundancyReport& r,
                             const RedundancyReport* reference = nullptr,
                             const QString& reference_name = {});
// Per-expert weight norms, banks x experts.
void drawExpertNorms(QCustomPlot* plot, const RedundancyReport& r);
// Routers compared across layers: mean over l's rows of the best |cosine| with a row of l'.
void drawRouterSimilarity(QCustomPlot* plot, const RedundancyReport& r);

}  // namespace unipool::studio
