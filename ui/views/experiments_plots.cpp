#include "views/experiments_plots.h"

#include <qcustomplot.h>

#include <QTableWidget>
#include <cmath>
#include <map>

#include "views/plot_style.h"

namespace unipool::studio {

void drawProbe(QCustomPlot* plot, const std::vector<ProbeResult>& results) {
  plot->clearPlottables();
  plot->clearItems();
  if (results.empty()) return;
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  const ProbeResult& first = results.front();
  for (size_t i = 1; i < first.rows.size(); ++i)
    ticker->addTick(double(i), QString::fromStdString(first.rows[i].name));
  const double width = 0.8 / double(results.size());
  for (size_t m = 0; m < results.size(); ++m) {
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    auto* errors = new QCPErrorBars(plot->xAxis, plot->yAxis);
    QVector<double> keys, values, spread;
    for (size_t i = 1; i < results[m].rows.size(); ++i) {
      keys << double(i) - 0.4 + width * (double(m) + 0.5);
      values << results[m].rows[i].d_loss_mean;
      spread << results[m].rows[i].d_loss_std;
    }
    bars->setData(keys, values);
    bars->setWidth(width);
    bars->setPen(Qt::NoPen);
    bars->setBrush(categoryColor(int(m)));
    bars->setName(QString::fromStdString(results[m].model));
    errors->setDataPlottable(bars);
    errors->setData(spread);
    errors->removeFromLegend();
  }
  plot->xAxis->setTicker(ticker);
  plot->xAxis->setTickLabelRotation(60);
  plot->xAxis->setRange(0.3, double(first.rows.size()) - 0.3);
  // Our models read bytes, downloaded ones tokens: the loss is per byte or per token.
  plot->yAxis->setLabel(QObject::tr("loss change with random routing (nats/byte or /token)"));
  plot->yAxis->rescale();
  plot->yAxis->setRangeLower(std::min(0.0, plot->yAxis->range().lower));
  plot->legend->setVisible(true);
  requestReplot(plot);
}

void fillProbeTable(QTableWidget* table, const std::vector<ProbeResult>& results) {
  table->clear();
  table->setColumnCount(1 + 2 * int(results.size()));
  QStringList header = {QObject::tr("random routing in")};
  for (const ProbeResult& r : results)
    header << QObject::tr("%1: d loss").arg(QString::fromStdString(r.model))
           << QObject::tr("d accuracy");
  table->setHorizontalHeaderLabels(header);
  const int rows = results.empty() ? 0 : int(results.front().rows.size());
  table->setRowCount(rows);
  for (int i = 0; i < rows; ++i) {
    table->setItem(i, 0,
                   new QTableWidgetItem(QString::fromStdString(results[0].rows[size_t(i)].name)));
    for (size_t m = 0; m < results.size(); ++m) {
      const ProbeRow& row = results[m].rows[size_t(i)];
      table->setItem(i, int(1 + 2 * m),
                     new QTableWidgetItem(QStringLiteral("%1 +- %2")
                                              .arg(row.d_loss_mean, 0, 'f', 4)
                                              .arg(row.d_loss_std, 0, 'f', 4)));
      table->setItem(i, int(2 + 2 * m),
                     new QTableWidgetItem(QStringLiteral("%1 +- %2")
                                              .arg(row.d_accuracy_mean, 0, 'f', 4)
                                              .arg(row.d_accuracy_std, 0, 'f', 4)));
    }
  }
  table->resizeColumnsToContents();
}

void drawSweepCurves(QCustomPlot* plot, const SweepState& state) {
  plot->clearGraphs();
  std::map<std::string, int> colour;  // one colour per configuration, seeds share it
  for (const SweepRun& r : state.runs) {
    const std::string key = r.kind + std::to_string(r.experts_per_group);
    if (!colour.count(key)) colour[key] = int(colour.size());
    QCPGraph* g = plot->addGraph();
    QVector<double> x, y;
    for (const auto& [step, ce] : r.curve) {
      x << double(step);
      y << ce;
    }
    g->setData(x, y, true);
    g->setPen(
        QPen(categoryColor(colour[key]), 1.2, r.kind == "vanilla" ? Qt::DashLine : Qt::SolidLine));
    g->setName(QString::fromStdString(r.name));
  }
  plot->xAxis->setLabel(QObject::tr("step"));
  plot->yAxis->setLabel(QObject::tr("training CE"));
  plot->rescaleAxes();
  requestReplot(plot);
}

void drawSweep(QCustomPlot* plot, const SweepState& state) {
  plot->clearPlottables();
  plot->clearItems();
  // By aux coefficient (one line each in a --aux-coefs grid), then by budget: finished
  // UniPool runs.
  std::map<double, std::map<double, std::vector<double>>> loss;
  std::map<double, std::vector<double>> speed;
  std::vector<double> vanilla;
  // UniPool-lock and its random control: points of their own (kind, aux) beside the line.
  std::map<std::pair<std::string, double>, std::vector<double>> locks;
  double lock_budget = 100;
  for (const SweepRun& r : state.runs) {
    if (!r.done) continue;
    if (r.kind == "vanilla") {
      vanilla.push_back(r.valid_loss);
      continue;
    }
    if (r.kind != "unipool") {
      locks[{r.kind, r.aux_coef}].push_back(r.valid_loss);
      lock_budget = 100 * r.budget;
      continue;
    }
    loss[r.aux_coef][100 * r.budget].push_back(r.valid_loss);
    speed[100 * r.budget].push_back(r.tokens_per_s);
  }
  QVector<double> x;
  int colour = 0;
  for (const auto& [aux, by_budget] : loss) {
    QVector<double> xs, y, e;
    for (const auto& [budget, v] : by_budget) {
      double m = 0, sd = 0;
      mean_and_spread(v, &m, &sd);
      xs << budget;
      y << m;
      e << sd;
    }
    if (x.isEmpty()) x = xs;
    QCPGraph* g = plot->addGraph(plot->xAxis, plot->yAxis);
    g->setData(xs, y);
    g->setPen(QPen(categoryColor(colour == 2 ? 3 : colour), 1.6));  // 2 is the speed line's
    ++colour;
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 6));
    g->setName(aux < 0 ? QObject::tr("UniPool validation CE")
                       : QObject::tr("UniPool validation CE, aux %1").arg(aux));
    auto* errors = new QCPErrorBars(plot->xAxis, plot->yAxis);
    errors->setDataPlottable(g);
    errors->setData(e);
    errors->removeFromLegend();
  }
  for (const auto& [key, v] : locks) {
    double m = 0, sd = 0;
    mean_and_spread(v, &m, &sd);
    QCPGraph* g = plot->addGraph(plot->xAxis, plot->yAxis);
    g->setData(QVector<double>{lock_budget}, QVector<double>{m});
    g->setLineStyle(QCPGraph::lsNone);
    const bool control = key.first == "lock-random";
    g->setScatterStyle(QCPScatterStyle(control ? QCPScatterStyle::ssTriangleInverted
                                               : QCPScatterStyle::ssDiamond,
                                       categoryColor(control ? 5 : 4), 9));
    const QString what = control ? QObject::tr("lock-random") : QObject::tr("UniPool-lock");
    g->setName(key.second < 0 ? what : QObject::tr("%1, aux %2").arg(what).arg(key.second));
    auto* errors = new QCPErrorBars(plot->xAxis, plot->yAxis);
    errors->setDataPlottable(g);
    errors->setData(QVector<double>{sd});
    errors->removeFromLegend();
  }
  QVector<double> ys;
  for (double budget : x) {
    double sm = 0, ss = 0;
    mean_and_spread(speed[budget], &sm, &ss);
    ys << sm;
  }
  QCPGraph* tps = plot->addGraph(plot->xAxis, plot->yAxis2);
  tps->setData(x, ys);
  tps->setPen(QPen(categoryColor(2), 1.0, Qt::DotLine));
  tps->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssSquare, 5));
  tps->setName(QObject::tr("training tokens/s"));
  plot->yAxis2->setVisible(true);
  plot->yAxis2->setLabel(QObject::tr("tokens/s"));
  plot->xAxis->setLabel(QObject::tr("expert budget (% of vanilla)"));
  plot->yAxis->setLabel(QObject::tr("validation CE"));
  plot->rescaleAxes();
  if (!vanilla.empty()) {
    double m = 0, sd = 0;
    mean_and_spread(vanilla, &m, &sd);
    auto* line = new QCPItemStraightLine(plot);
    line->point1->setCoords(0, m);
    line->point2->setCoords(1, m);
    line->setPen(QPen(QColor(200, 0, 0), 1.2, Qt::DashLine));
    auto* label = new QCPItemText(plot);
    label->position->setCoords(x.isEmpty() ? 50 : x.front(), m);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    label->setText(QObject::tr("vanilla %1").arg(m, 0, 'f', 3));
    label->setColor(QColor(200, 0, 0));
    plot->yAxis->setRange(std::min(plot->yAxis->range().lower, m - 0.02),
                          std::max(plot->yAxis->range().upper, m + 0.02));
  }
  // Budgets run past 100% when the pool is larger than vanilla's (a grid's 96 experts: 200%).
  plot->xAxis->setRange(0, std::max(110.0, (x.isEmpty() ? 0.0 : x.back()) + 10));
  plot->legend->setVisible(true);
  requestReplot(plot);
}

void drawSweepGrid(QCustomPlot* plot, const SweepState& state, bool zero_gate) {
  plot->clearPlottables();
  plot->clearItems();
  const SweepGrid g = sweep_grid(state);
  const int columns = int(g.pool_sizes.size()), rows = int(g.aux_coefs.size());
  if (columns == 0 || rows == 0) return requestReplot(plot);
  auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
  map->setInterpolate(false);
  map->data()->setSize(columns, rows);
  map->data()->setRange(QCPRange(0, columns - 1), QCPRange(0, rows - 1));
  const std::vector<double>& values = zero_gate ? g.zero_gate : g.valid_loss;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < columns; ++c) {
      const double v = values[size_t(r * columns + c)];
      map->data()->setCell(c, r, zero_gate ? 100 * v : v);
      if (!std::isfinite(v)) continue;
      auto* label = new QCPItemText(plot);  // the number in the cell
      label->position->setCoords(c, r);
      label->setText(zero_gate ? QStringLiteral("%1%").arg(100 * v, 0, 'f', 1)
                               : QString::number(v, 'f', 3));
      label->setColor(Qt::white);
    }
  map->setGradient(viridisGradient());
  attachColorScale(plot, map, zero_gate ? QObject::tr("zero-gate tokens (%)")
                                        : QObject::tr("validation CE"));
  map->rescaleDataRange(true);
  auto xt = QSharedPointer<QCPAxisTickerText>::create();
  for (int c = 0; c < columns; ++c) xt->addTick(c, QString::number(g.pool_sizes[size_t(c)]));
  auto yt = QSharedPointer<QCPAxisTickerText>::create();
  for (int r = 0; r < rows; ++r)
    yt->addTick(r, g.aux_coefs[size_t(r)] < 0 ? QObject::tr("preset")
                                               : QString::number(g.aux_coefs[size_t(r)]));
  plot->xAxis->setTicker(xt);
  plot->yAxis->setTicker(yt);
  plot->xAxis->setLabel(QObject::tr("pool size (experts)"));
  plot->yAxis->setLabel(QObject::tr("aux coefficient"));
  plot->xAxis->setRange(-0.5, columns - 0.5);
  plot->yAxis->setRange(-0.5, rows - 0.5);
  plot->legend->setVisible(false);
  requestReplot(plot);
}

}  // namespace unipool::studio
