// The plots of the Downloaded model tab, from a TextRouting or DomainRouting: pure drawing,
// no state. Values are shares of tokens (a token counts once for each expert in its top-k).
#pragma once

#include <QString>

#include "session/downloaded_model.h"

class QCustomPlot;
class QTableWidget;

namespace unipool::studio {

// Share of tokens whose top-k holds the expert: counts (M, E) / tokens.
double tokenShare(const std::vector<int64_t>& counts, int64_t tokens, int experts, int row, int e);

// MoE layers (rows, labelled with the model's layer numbers) x routed experts.
void drawDownloadedHeatmap(QCustomPlot* plot, const TextRouting& r);
// One row per MoE layer, one column per token (its piece in the header): the chosen experts,
// coloured by the first. At most `max_columns` tokens.
void fillTokenTable(QTableWidget* table, const TextRouting& r, int max_columns = 512);
// Experts x experts of MoE layer `row`: share of tokens whose top-k holds both.
void drawCoactivation(QCustomPlot* plot, const TextRouting& r, int row);
// Bars per expert: share of the domain's tokens whose top-k holds it, in MoE layer `row`
// (-1: averaged over the MoE layers), with the uniform k / E line.
void drawDomain(QCustomPlot* plot, const DomainRouting& r, int domain, int row);

}  // namespace unipool::studio
