#include "views/redundancy_plots.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "views/plot_style.h"

namespace unipool::studio {

namespace {

// Bank labels as ticks at each bank's centre (every k-th when there are many).
void setBankTicks(QCPAxis* axis, const std::vector<std::string>& labels, int per_bank, int block,
                  int most = 16) {
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  const int every = std::max<int>(1, (int(labels.size()) + most - 1) / most);
  for (size_t b = 0; b < labels.size(); b += size_t(every)) {
    std::string label = labels[b];
    if (label.rfind("layer ", 0) == 0) label = "L" + label.substr(6);
    ticker->addTick((double(b) + 0.5) * per_bank / block - 0.5, QString::fromStdString(label));
  }
  axis->setTicker(ticker);
}

}  // namespace

int drawSimilarity(QCustomPlot* plot, const RedundancyReport& r, const SimilarityMap& cells) {
  plot->clearPlottables();
  plot->clearItems();
  const int block = cells.block, m = cells.size;
  auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
  map->setInterpolate(false);
  map->data()->setSize(m, m);
  map->data()->setRange(QCPRange(0, m - 1), QCPRange(0, m - 1));
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j)
      map->data()->setCell(j, i, cells.cells[size_t(i) * size_t(m) + size_t(j)]);
  map->setGradient(divergingGradient());
  attachColorScale(plot, map, QObject::tr("cosine"));
  map->setDataRange(QCPRange(-1, 1));
  if (r.banks.size() > 1 && r.banks.size() <= 128) {
    for (size_t b = 1; b < r.banks.size(); ++b) {
      const double at = double(b) * r.experts / block - 0.5;
      for (bool vertical : {true, false}) {
        auto* line = new QCPItemStraightLine(plot);
        line->point1->setCoords(vertical ? at : 0, vertical ? 0 : at);
        line->point2->setCoords(vertical ? at : 1, vertical ? 1 : at);
        line->setPen(QPen(QColor(255, 255, 255, 150), 1));
      }
    }
  }
  setBankTicks(plot->xAxis, r.labels, r.experts, block);
  setBankTicks(plot->yAxis, r.labels, r.experts, block);
  plot->yAxis->setRangeReversed(true);
  plot->xAxis->setRange(-0.5, m - 0.5);
  plot->yAxis->setRange(-0.5, m - 0.5);
  plot->xAxis->setLabel(
      block > 1
          ? QObject::tr("expert, by layer (a cell: the most similar pair of %1 x %1)").arg(block)
          : QObject::tr("expert, by layer"));
  plot->yAxis->setLabel(QObject::tr("expert, by layer"));
  requestReplot(plot);
  return block;
}

void drawSimilarityHistogram(QCustomPlot* plot, const RedundancyReport& r,
                             const RedundancyReport* reference, const QString& reference_name) {
  plot->clearPlottables();
  const size_t bins = r.within.size();
  if (bins == 0) return;
  const double width = r.histogram_edges[1] - r.histogram_edges[0];
  struct Series {
    const std::vector<int64_t>* counts;
    QString name;
    QColor color;
    Qt::PenStyle style;
  };
  std::vector<Series> series = {
      {&r.within, QObject::tr("within a layer"), QColor("#4e79a7"), Qt::SolidLine},
      {&r.cross, QObject::tr("across layers"), QColor("#f28e2b"), Qt::SolidLine}};
  if (reference && reference->cross.size() == bins) {
    // A UniPool model's one shared pool has no pairs across banks: its pairs in the pool.
    const bool pooled = reference->banks.size() == 1;
    series.push_back({pooled ? &reference->within : &reference->cross,
                      (pooled ? QObject::tr("in the pool: %1") : QObject::tr("across layers: %1"))
                          .arg(reference_name.size() > 18 ? reference_name.left(17) + QChar(0x2026)
                                                          : reference_name),
                      QColor("#59a14f"), Qt::DashLine});
  }
  for (const Series& s : series) {
    double total = 0;
    for (int64_t c : *s.counts) total += double(c);
    if (total == 0) continue;
    auto* g = new QCPGraph(plot->xAxis, plot->yAxis);
    g->setName(s.name);
    g->setLineStyle(QCPGraph::lsStepCenter);
    g->setPen(QPen(s.color, 2, s.style));
    for (size_t b = 0; b < bins; ++b)
      g->addData(r.histogram_edges[b] + width / 2, double((*s.counts)[b]) / total);
  }
  plot->legend->setVisible(true);
  if (plot->legend->layout() != plot->plotLayout()) {
    // Below the axes: inside them it would hide the bars of a narrow plot.
    plot->axisRect()->insetLayout()->take(plot->legend);
    plot->plotLayout()->addElement(1, 0, plot->legend);
    plot->legend->setFillOrder(QCPLayoutGrid::foRowsFirst);
    plot->plotLayout()->setRowStretchFactor(1, 0.001);
  }
  plot->xAxis->setLabel(QObject::tr("cosine of two experts' weights"));
  plot->yAxis->setLabel(QObject::tr("share of pairs"));
  plot->rescaleAxes();
  plot->yAxis->setRangeLower(0);
  requestReplot(plot);
}

void drawExpertNorms(QCustomPlot* plot, const RedundancyReport& r) {
  plot->clearPlottables();
  const int B = int(r.banks.size()), E = r.experts;
  if (B == 0) return;
  auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
  map->setInterpolate(false);
  map->data()->setSize(E, B);
  map->data()->setRange(QCPRange(0, E - 1), QCPRange(0, B - 1));
  double lo = 1e300, hi = 0;
  for (int b = 0; b < B; ++b)
    for (int e = 0; e < E; ++e) {
      const double v = r.norms[size_t(b) * size_t(E) + size_t(e)];
      map->data()->setCell(e, b, v);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  map->setGradient(viridisGradient());
  attachColorScale(plot, map, QObject::tr("weight norm"));
  map->setDataRange(QCPRange(lo, hi > lo ? hi : lo + 1));
  setBankTicks(plot->yAxis, r.labels, 1, 1, 10);
  plot->xAxis->ticker()->setTickCount(4);
  plot->yAxis->setRangeReversed(true);
  plot->xAxis->setLabel(QObject::tr("expert"));
  plot->xAxis->setRange(-0.5, E - 0.5);
  plot->yAxis->setRange(-0.5, B - 0.5);
  requestReplot(plot);
}

void drawRouterSimilarity(QCustomPlot* plot, const RedundancyReport& r) {
  plot->clearPlottables();
  const int R = int(r.router_layers.size());
  if (R == 0) return;
  auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
  map->setInterpolate(false);
  map->data()->setSize(R, R);
  map->data()->setRange(QCPRange(0, R - 1), QCPRange(0, R - 1));
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < R; ++j)
      map->data()->setCell(j, i, r.router_similarity[size_t(i) * size_t(R) + size_t(j)]);
  map->setGradient(viridisGradient());
  attachColorScale(plot, map, QObject::tr("best |cos|"));
  map->setDataRange(QCPRange(0, 1));
  std::vector<std::string> labels;
  for (int l : r.router_layers) labels.push_back("layer " + std::to_string(l));
  setBankTicks(plot->xAxis, labels, 1, 1, 4);
  setBankTicks(plot->yAxis, labels, 1, 1, 10);
  plot->yAxis->setRangeReversed(true);
  plot->xAxis->setLabel(QObject::tr("router of layer"));
  plot->xAxis->setRange(-0.5, R - 0.5);
  plot->yAxis->setRange(-0.5, R - 0.5);
  requestReplot(plot);
}

}  // namespace unipool::studio
