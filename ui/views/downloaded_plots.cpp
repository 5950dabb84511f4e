#include "views/downloaded_plots.h"

#include <qcustomplot.h>

#include <QHeaderView>
#include <QTableWidget>

#include "views/plot_style.h"

namespace unipool::studio {

double tokenShare(const std::vector<int64_t>& counts, int64_t tokens, int experts, int row, int e) {
  if (tokens <= 0) return 0.0;
  return double(counts[size_t(row) * size_t(experts) + size_t(e)]) / double(tokens);
}

namespace {

QCPColorMap* colorMap(QCustomPlot* plot, int columns, int rows, const QString& label) {
  plot->clearPlottables();
  plot->clearItems();
  auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
  map->data()->setSize(columns, rows);
  map->data()->setRange(QCPRange(0, columns - 1), QCPRange(0, rows - 1));
  map->setInterpolate(false);
  map->setGradient(viridisGradient());
  plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>::create());
  attachColorScale(plot, map, label);
  plot->xAxis->setRange(-0.5, columns - 0.5);
  plot->yAxis->setRange(-0.5, rows - 0.5);
  plot->yAxis->setRangeReversed(true);
  return map;
}

}  // namespace

void drawDownloadedHeatmap(QCustomPlot* plot, const TextRouting& r) {
  const int M = int(r.info.moe_layers.size()), E = r.info.n_experts;
  auto* map = colorMap(plot, E, M, QObject::tr("share of tokens (uniform %1)")
                                       .arg(double(r.info.top_k) / E, 0, 'f', 3));
  for (int m = 0; m < M; ++m)
    for (int e = 0; e < E; ++e)
      map->data()->setCell(e, m, tokenShare(r.counts, int64_t(r.ids.size()), E, m, e));
  map->rescaleDataRange(true);
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  for (int m = 0; m < M; ++m)
    ticker->addTick(m, QStringLiteral("L%1").arg(r.info.moe_layers[size_t(m)]));
  plot->yAxis->setTicker(ticker);
  plot->xAxis->setLabel(QObject::tr("routed expert"));
  plot->yAxis->setLabel(QObject::tr("MoE layer"));
  requestReplot(plot);
}

void fillTokenTable(QTableWidget* table, const TextRouting& r, int max_columns) {
  const int M = int(r.info.moe_layers.size()), k = r.info.top_k;
  const int n = int(std::min<int64_t>(int64_t(r.ids.size()), max_columns));
  table->clear();
  table->setRowCount(M);
  table->setColumnCount(n);
  QStringList rows, columns;
  for (int m = 0; m < M; ++m) rows << QStringLiteral("L%1").arg(r.info.moe_layers[size_t(m)]);
  for (int t = 0; t < n; ++t) {
    // Whitespace shown, so a token that is a space or a newline has a visible header.
    QString piece = QString::fromStdString(r.pieces[size_t(t)]);
    piece.replace(QLatin1Char(' '), QChar(0x2423)).replace(QLatin1Char('\n'), QChar(0x21B5));
    columns << piece;
  }
  table->setVerticalHeaderLabels(rows);
  table->setHorizontalHeaderLabels(columns);
  for (int t = 0; t < n; ++t)
    for (int m = 0; m < M; ++m) {
      const size_t at = (size_t(t) * size_t(M) + size_t(m)) * size_t(k);
      QStringList experts, tip;
      int first = r.routes.experts[at];
      float best = -1;
      for (int j = 0; j < k; ++j) {
        experts << QString::number(r.routes.experts[at + size_t(j)]);
        tip << QObject::tr("expert %1: gate %2")
                   .arg(r.routes.experts[at + size_t(j)])
                   .arg(double(r.routes.gates[at + size_t(j)]), 0, 'f', 3);
        if (r.routes.gates[at + size_t(j)] > best) {
          best = r.routes.gates[at + size_t(j)];
          first = r.routes.experts[at + size_t(j)];
        }
      }
      auto* item = new QTableWidgetItem(experts.join(QLatin1Char(',')));
      item->setBackground(categoryColor(first).lighter(150));  // the largest gate's expert
      item->setToolTip(QObject::tr("token %1 (%2), layer %3\n")
                           .arg(t)
                           .arg(r.ids[size_t(t)])
                           .arg(r.info.moe_layers[size_t(m)]) +
                       tip.join(QLatin1Char('\n')));
      table->setItem(m, t, item);
    }
  table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
}

void drawCoactivation(QCustomPlot* plot, const TextRouting& r, int row) {
  const int E = r.info.n_experts;
  auto* map = colorMap(plot, E, E, QObject::tr("share of tokens routed to both"));
  const size_t base = size_t(row) * size_t(E) * size_t(E);
  const double n = std::max<double>(1.0, double(r.ids.size()));
  for (int i = 0; i < E; ++i)
    for (int j = 0; j < E; ++j)
      map->data()->setCell(j, i, double(r.pairs[base + size_t(i) * size_t(E) + size_t(j)]) / n);
  map->rescaleDataRange(true);
  plot->xAxis->setLabel(QObject::tr("expert"));
  plot->yAxis->setLabel(QObject::tr("expert (layer %1)").arg(r.info.moe_layers[size_t(row)]));
  requestReplot(plot);
}

void drawDomain(QCustomPlot* plot, const DomainRouting& r, int domain, int row) {
  const int M = int(r.info.moe_layers.size()), E = r.info.n_experts;
  plot->clearPlottables();
  plot->clearItems();
  auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
  bars->setWidth(0.8);
  const int64_t tokens = r.tokens[size_t(domain)];
  const std::vector<int64_t> counts(r.counts.begin() + long(size_t(domain) * M * E),
                                    r.counts.begin() + long(size_t(domain + 1) * M * E));
  QVector<double> x, y;
  for (int e = 0; e < E; ++e) {
    double v = 0;
    if (row >= 0) {
      v = tokenShare(counts, tokens, E, row, e);
    } else {
      for (int m = 0; m < M; ++m) v += tokenShare(counts, tokens, E, m, e) / M;
    }
    x << e;
    y << v;
  }
  bars->setData(x, y);
  bars->setName(r.domains[size_t(domain)]);
  auto* uniform = new QCPItemStraightLine(plot);
  const double k_over_e = double(r.info.top_k) / E;
  uniform->point1->setCoords(0, k_over_e);
  uniform->point2->setCoords(1, k_over_e);
  uniform->setPen(QPen(Qt::darkGray, 1, Qt::DashLine));
  plot->xAxis->setLabel(QObject::tr("routed expert"));
  plot->yAxis->setLabel(QObject::tr("share of %1's %2 tokens (dashed: uniform k/E = %3)")
                            .arg(r.domains[size_t(domain)])
                            .arg(tokens)
                            .arg(k_over_e, 0, 'f', 3));
  plot->xAxis->setRange(-0.5, E - 0.5);
  plot->yAxis->setRange(0, std::max(1.5 * k_over_e, *std::max_element(y.begin(), y.end()) * 1.1));
  requestReplot(plot);
}

}  // namespace unipool::studio
