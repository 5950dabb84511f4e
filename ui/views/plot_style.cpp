#include "views/plot_style.h"

#include <qcustomplot.h>

#include <QFileInfo>
#include <QSaveFile>
#include <QSvgGenerator>

namespace unipool::studio {

QCPColorGradient viridisGradient() {
  QCPColorGradient g;
  g.clearColorStops();
  static const char* stops[] = {"#440154", "#482878", "#3e4a89", "#31688e", "#26828e",
                                "#1f9e89", "#35b779", "#6dcd59", "#b4de2c", "#fde725"};
  const int n = int(sizeof stops / sizeof stops[0]);
  for (int i = 0; i < n; ++i) g.setColorStopAt(double(i) / (n - 1), QColor(stops[i]));
  g.setNanHandling(QCPColorGradient::nhNanColor);
  g.setNanColor(QColor(232, 232, 232));
  return g;
}

QCPColorGradient divergingGradient() {
  QCPColorGradient g;
  g.clearColorStops();
  g.setColorStopAt(0.0, QColor("#2166ac"));
  g.setColorStopAt(0.5, QColor("#f7f7f7"));
  g.setColorStopAt(1.0, QColor("#b2182b"));
  return g;
}

QColor categoryColor(int i) {
  // Tableau-like qualitative palette; beyond it, golden-angle hues stay distinguishable.
  static const char* palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  const int n = int(sizeof palette / sizeof palette[0]);
  if (i >= 0 && i < n) return QColor(palette[i]);
  return QColor::fromHsv(int((i * 137.508)) % 360, 150, 210);
}

namespace {

const char* const kStale = "unipoolStale";

// Brings a stale plot up to date as it is shown (tab switched, window restored).
class ReplotOnShow : public QObject {
 public:
  using QObject::QObject;
  bool eventFilter(QObject* watched, QEvent* event) override {
    if (event->type() == QEvent::Show) {
      auto* plot = static_cast<QCustomPlot*>(watched);
      if (plot->property(kStale).toBool()) {
        plot->setProperty(kStale, false);
        plot->replot();
      }
    }
    return false;
  }
};

}  // namespace

void requestReplot(QCustomPlot* plot) {
  if (plot->isVisible()) {
    plot->replot(QCustomPlot::rpQueuedReplot);
  } else {
    plot->setProperty(kStale, true);
  }
}

void applyPlotStyle(QCustomPlot* plot) {
  plot->installEventFilter(new ReplotOnShow(plot));
  plot->setAntialiasedElements(QCP::aeNone);
  plot->setNoAntialiasingOnDrag(true);
  QFont f = plot->font();
  f.setPointSize(9);
  for (QCPAxis* a : {plot->xAxis, plot->yAxis, plot->xAxis2, plot->yAxis2}) {
    a->setTickLabelFont(f);
    a->setLabelFont(f);
  }
  plot->legend->setFont(f);
}

void attachColorScale(QCustomPlot* plot, QCPColorMap* map, const QString& label) {
  // One scale per plot: reuse it when the map is rebuilt.
  QCPColorScale* scale = nullptr;
  if (plot->plotLayout()->hasElement(0, 1))
    scale = qobject_cast<QCPColorScale*>(plot->plotLayout()->element(0, 1));
  if (!scale) {
    scale = new QCPColorScale(plot);
    plot->plotLayout()->addElement(0, 1, scale);
    scale->setType(QCPAxis::atRight);
    scale->setBarWidth(10);
    auto* margins = new QCPMarginGroup(plot);
    plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  }
  scale->axis()->setLabel(label);
  // The map takes the scale's gradient when they are joined: give the scale the map's first.
  scale->setGradient(map->gradient());
  map->setColorScale(scale);
}

void setLayerTicks(QCPAxis* axis, int layers) {
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (int l = 0; l < layers; ++l) ticker->addTick(l, QStringLiteral("L%1").arg(l));
  axis->setTicker(ticker);
}

void setIdTicks(QCPAxis* axis) {
  QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
  ticker->setTickStep(1.0);
  ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);  // 1, 2, 3, ... x the step
  ticker->setTickCount(8);
  axis->setTicker(ticker);
}

QString exportPlot(QCustomPlot* plot, const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  // A plot on a tab never shown (or hidden) has no real size yet: draw it at a readable one.
  const bool unsized = plot->width() < 300 || plot->height() < 200;
  const QSize size = unsized ? QSize(900, 600) : plot->size();
  const int w = unsized ? size.width() : 0, h = unsized ? size.height() : 0;  // 0: as shown
  bool ok = false;
  if (suffix == QLatin1String("png")) {
    ok = plot->savePng(path, w, h, 2.0);
  } else if (suffix == QLatin1String("pdf")) {
    ok = plot->savePdf(path, w, h);
  } else if (suffix == QLatin1String("svg")) {
    // QSvgGenerator cannot report a failed write; QSaveFile can (and keeps the old file).
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
      return QStringLiteral("could not write %1: %2").arg(path, file.errorString());
    QSvgGenerator svg;
    svg.setOutputDevice(&file);
    svg.setSize(size);
    svg.setViewBox(QRect(QPoint(0, 0), size));
    svg.setTitle(QStringLiteral("UniPool Studio plot"));
    QCPPainter painter;
    ok = painter.begin(&svg);
    if (ok) {
      plot->toPainter(&painter, size.width(), size.height());
      ok = painter.end();
    }
    ok = ok && file.commit();
    if (!ok) return QStringLiteral("could not write %1: %2").arg(path, file.errorString());
  } else {
    return QStringLiteral("unknown format '.%1': use .png, .pdf or .svg").arg(suffix);
  }
  if (!ok || !QFileInfo(path).exists() || QFileInfo(path).size() == 0)
    return QStringLiteral("could not write %1").arg(path);
  return {};
}

}  // namespace unipool::studio
