// Shared look of the studio's plots and their export to files.
#pragma once

#include <QColor>
#include <QString>

class QCustomPlot;
class QCPColorGradient;
class QCPColorMap;
class QCPAxis;

namespace unipool::studio {

// Perceptually uniform, colour-blind safe (viridis; QCustomPlot 2.1 has no preset for it).
// Cells with no value (an expert the layer cannot reach) are drawn in light grey.
QCPColorGradient viridisGradient();
// A distinct colour for category `i` (experts in the token grid, runs in the compare view).
QColor categoryColor(int i);
// A diverging gradient for values in [-1, 1] (cosine similarity).
QCPColorGradient divergingGradient();
// Common axes, fonts and interactions of every studio plot.
void applyPlotStyle(QCustomPlot* plot);
// A colour scale (legend) at the right of `plot`, labelled, for its colour map.
void attachColorScale(QCustomPlot* plot, QCPColorMap* map, const QString& label);
// Integer ticks "L0", "L1", ... on a layer axis of `layers` rows.
void setLayerTicks(QCPAxis* axis, int layers);
// Whole-number ticks on an axis of ids (experts, pool sizes): steps of 1, 2, 5, 10, ... never
// 2.5 or 7.5, however the range changes (a live pool resize).
void setIdTicks(QCPAxis* axis);
// Replots soon when the plot is on screen; otherwise marks it stale and replots when it is
// shown. Views call this on every update: plots on hidden tabs then cost nothing (exports draw
// from the data directly, so they are never stale).
void requestReplot(QCustomPlot* plot);
// Saves by file suffix: .png, .pdf or .svg. Returns an empty string or the reason it failed.
QString exportPlot(QCustomPlot* plot, const QString& path);

}  // namespace unipool::studio
