// The Experiments tab's plots and table, drawn from plain results (no job state).
#pragma once

#include <vector>

#include "unipool/experiments.h"

class QCustomPlot;
class QTableWidget;

namespace unipool::studio {

// Loss change per condition (each layer alone, then "from k down"), one bar group per model,
// with the spread over the random draws as error bars.
void drawProbe(QCustomPlot* plot, const std::vector<ProbeResult>& results);
void fillProbeTable(QTableWidget* table, const std::vector<ProbeResult>& results);
// Each run's training CE (mean per 10 steps), one colour per pool size.
void drawSweepCurves(QCustomPlot* plot, const SweepState& state);
// Validation CE against the expert budget (mean over seeds, their spread as error bars),
// vanilla as a horizontal line; training tokens/s on the right axis.
void drawSweep(QCustomPlot* plot, const SweepState& state);
// A --aux-coefs grid: pool size x aux coefficient, each cell the zero-gate share (%) or the
// validation CE, mean over the finished seeds, with its number written in.
void drawSweepGrid(QCustomPlot* plot, const SweepState& state, bool zero_gate);

}  // namespace unipool::studio
